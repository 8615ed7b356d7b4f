"""Settings from environment variables, one place for every service.

| variable | default | meaning |
| --- | --- | --- |
| NATS_URL | nats://127.0.0.1:4222 | JetStream server(s), comma separated |
| PERSISTENCE_MODULE | eventsourcing.sqlite | or eventsourcing.postgres |
| DATA_DIR | var | SQLite files live in DATA_DIR/<service>/ |
| POSTGRES_DBNAME/HOST/PORT/USER/PASSWORD | | PostgreSQL, one schema per service |
| <SERVICE>_PORT | 8001/8002/8003 | HTTP port of households/relief/ledger |
| RELAY_BATCH | 500 | events published per outbox pass |
| CONSUMER_BATCH | 100 | messages handled per consumer transaction |
| MAX_DELIVER | 5 | deliveries before a message goes to the dead-letter stream |
| NATS_REPLICAS | 1 | replicas of the streams a service creates (3 on a cluster; never lowered) |
| AUTH_KEYS_DIR | DATA_DIR/auth | Ed25519 key ring: households signs tokens, every service verifies them |
| AUTH_TOKEN_HOURS | 12 | how long a sign-in lasts |
| PERSONAL_DATA_KEY | | households only: AES key (base64 of 16/24/32 bytes) encrypting its event store |
| PERSONAL_DATA_KEY_FILE | DATA_DIR/households-keys/personal-data.key | the same key in a file; generated on first start if neither is set |
"""

import base64
import logging
import os
import re
import time
import tomllib
from importlib import metadata
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORTS = {"households": 8001, "relief": 8002, "ledger": 8003}
# Services whose event store holds personal data, and is encrypted at rest (eventsourcing's cipher).
ENCRYPTED_SERVICES = ("households",)
CIPHER_TOPIC = "eventsourcing.cryptography:AESCipher"  # AES-GCM from the `cryptography` package

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    service: str
    nats_url: str = "nats://127.0.0.1:4222"
    persistence_module: str = "eventsourcing.sqlite"
    data_dir: Path = Path("var")
    port: int = 8000
    relay_batch: int = 500
    outbox_relay: str = "inline"  # or "process": services/common/relay_process.py
    consumer_batch: int = 100
    max_deliver: int = 5
    nats_replicas: int = 1
    postgres: dict[str, str] = field(default_factory=dict)
    auth_keys_dir: Path | None = None
    auth_token_hours: float = 12
    personal_data_key: str | None = field(default=None, repr=False)
    personal_data_key_file: Path | None = None

    @classmethod
    def from_env(cls, service: str, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        return cls(
            service=service,
            nats_url=env.get("NATS_URL", cls.nats_url),
            persistence_module=env.get("PERSISTENCE_MODULE", cls.persistence_module),
            data_dir=Path(env.get("DATA_DIR", "var")),
            port=int(env.get(f"{service.upper()}_PORT", DEFAULT_PORTS.get(service, 8000))),
            relay_batch=int(env.get("RELAY_BATCH", cls.relay_batch)),
            outbox_relay=_choice(env, "OUTBOX_RELAY", ("inline", "process"), cls.outbox_relay),
            consumer_batch=int(env.get("CONSUMER_BATCH", cls.consumer_batch)),
            max_deliver=int(env.get("MAX_DELIVER", cls.max_deliver)),
            nats_replicas=int(env.get("NATS_REPLICAS", cls.nats_replicas)),
            postgres={k: v for k, v in env.items() if k.startswith("POSTGRES_")},
            auth_keys_dir=Path(env["AUTH_KEYS_DIR"]) if env.get("AUTH_KEYS_DIR") else None,
            auth_token_hours=float(env.get("AUTH_TOKEN_HOURS", cls.auth_token_hours)),
            personal_data_key=env.get("PERSONAL_DATA_KEY") or None,
            personal_data_key_file=Path(env["PERSONAL_DATA_KEY_FILE"]) if env.get("PERSONAL_DATA_KEY_FILE") else None,
        )

    @property
    def service_dir(self) -> Path:
        path = self.data_dir / self.service
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def keys_dir(self) -> Path:
        return self.auth_keys_dir or self.data_dir / "auth"

    @property
    def uses_postgres(self) -> bool:
        return self.persistence_module == "eventsourcing.postgres"

    def eventsourcing_env(self) -> dict[str, str]:
        """Environment for the service's eventsourcing Application."""
        env = {"PERSISTENCE_MODULE": self.persistence_module}
        if self.uses_postgres:
            env.update(self.postgres)
            env["POSTGRES_SCHEMA"] = re.sub(r"\W", "_", self.service)
            env.setdefault("POSTGRES_POOL_SIZE", "10")
            env["PROCESS_RECORDER_TOPIC"] = "services.common.pgrecorder:ProcessRecorder"
        else:
            env["SQLITE_DBNAME"] = str(self.service_dir / "events.sqlite")
            env["SQLITE_LOCK_TIMEOUT"] = "10"
        if self.service in ENCRYPTED_SERVICES:
            env["CIPHER_TOPIC"] = CIPHER_TOPIC
            env["CIPHER_KEY"] = self.cipher_key()
        return env

    def cipher_key(self) -> str:
        """The personal-data key (base64): PERSONAL_DATA_KEY, else PERSONAL_DATA_KEY_FILE, else a key
        file generated under DATA_DIR/households-keys on first start (fine for `make run`, not production)."""
        if self.personal_data_key:
            return _checked_key(self.personal_data_key, "PERSONAL_DATA_KEY")
        path = self.personal_data_key_file
        if path is not None:
            if not path.exists():
                raise RuntimeError(f"PERSONAL_DATA_KEY_FILE {path} does not exist")
            return _checked_key(path.read_text().strip(), f"PERSONAL_DATA_KEY_FILE {path}")
        path = self.data_dir / f"{self.service}-keys" / "personal-data.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = base64.b64encode(os.urandom(32)).decode()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process of this service won the race
                time.sleep(0.1)
                return _checked_key(path.read_text().strip(), str(path))
            with os.fdopen(fd, "w") as file:
                file.write(key + "\n")
            log.warning("No PERSONAL_DATA_KEY set: generated %s to encrypt the %s store. Production must supply "
                        "its own key (PERSONAL_DATA_KEY or PERSONAL_DATA_KEY_FILE) and keep a copy: without it "
                        "the store cannot be read.", path, self.service)
        return _checked_key(path.read_text().strip(), str(path))


def _checked_key(key: str, where: str) -> str:
    try:
        size = len(base64.b64decode(key, validate=True))
    except ValueError:
        raise RuntimeError(f"{where} is not base64") from None
    if size not in (16, 24, 32):
        raise RuntimeError(f"{where} must be 16, 24 or 32 bytes (base64), not {size}")
    return key


def package_version() -> str:
    try:
        return metadata.version("mttq-relief")
    except metadata.PackageNotFoundError:  # a checkout that was never `pip install -e .`
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return tomllib.loads(pyproject.read_text())["project"]["version"]


def _choice(env: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise RuntimeError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value

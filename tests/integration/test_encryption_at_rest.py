"""Personal data is encrypted at rest in the households event store (eventsourcing's AES-GCM cipher),
on SQLite and on PostgreSQL: the raw bytes of the store hold no name, CCCD or phone, the API still
answers with them, and a wrong key stops the service with a clear error instead of serving garbage."""

import base64
import os
import stat
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from services.common.settings import Settings
from services.common.store import PersonalDataKeyError
from services.households.application import Households
from services.households.main import create
from tests.signin import signed_in

HEAD, HEAD_CCCD, PHONE = "Nguyễn Thị Hồng Nhung", "001185009876", "0987654321"
MEMBER, MEMBER_CCCD = "Trần Quốc Khánh", "001083001234"
SECRETS = [HEAD, HEAD_CCCD, PHONE, MEMBER, MEMBER_CCCD, "Hong Nhung", "Quốc Khánh"]


def registration() -> dict:
    return {
        "head": {"name": HEAD, "cccd": HEAD_CCCD, "birth_year": 1985},
        "members": [{"name": MEMBER, "relation": "spouse", "birth_year": 1983, "cccd": MEMBER_CCCD,
                     "chronic_illness": True}],
        "commune_code": "00070", "village": "Thôn Đông", "address": "Số 12, đường Lê Lợi",
        "phone": PHONE, "poverty_status": "none",
        "legal_basis": {"ground": "public_task", "reference": "Chỉ thị 16/CT-TTg"},
    }


def raw_store_bytes(settings: Settings) -> bytes:
    """Every byte of the households event store: the SQLite files, or the PostgreSQL table rows."""
    if not settings.uses_postgres:
        folder = settings.service_dir
        return b"".join(path.read_bytes() for path in sorted(folder.glob("events.sqlite*")))
    import psycopg

    env = settings.eventsourcing_env()
    with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
                         user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"]) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (env["POSTGRES_SCHEMA"],))]
        assert tables, "no tables in the households schema"
        chunks = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{env["POSTGRES_SCHEMA"]}"."{table}"'):
                for value in row:
                    chunks.append(bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode())
        return b"\n".join(chunks)


def plain_forms(text: str) -> list[bytes]:
    """How a value could sit in the store unencrypted: UTF-8, JSON-escaped (\\uXXXX), UTF-16."""
    json_escaped = "".join(c if c.isascii() else f"\\u{ord(c):04x}" for c in text)
    return [text.encode(), json_escaped.encode(), text.encode("utf-16-le")]


def test_the_store_holds_no_personal_data_in_clear_and_the_api_still_reads_it(settings_for):
    settings = settings_for("households", NATS_URL="nats://127.0.0.1:1")
    with TestClient(create(settings)) as client:
        auth = signed_in(settings)
        created = client.post("/households", json=registration(), headers=auth)
        assert created.status_code == 201, created.text
        hid = created.json()["id"]
        fetched = client.get(f"/households/{hid}", headers=auth).json()
        assert fetched["head"]["name"] == HEAD and fetched["head"]["cccd"] == HEAD_CCCD
        assert fetched["phone"] == PHONE
        assert [m["name"] for m in fetched["members"]] == [MEMBER]
        found = client.get("/households", params={"cccd": HEAD_CCCD}, headers=auth).json()
        assert [item["id"] for item in found["items"]] == [hid]

    raw = raw_store_bytes(settings)
    assert len(raw) > 1000  # something was read
    for secret in SECRETS:
        for form in plain_forms(secret):
            assert form not in raw, f"{secret!r} is stored in clear ({form!r})"
    # the control: the same bytes do hold what is not secret (topics), so the scan itself works
    assert b"services.households.domain:Household" in raw

    if not settings.uses_postgres:  # the generated key file is private to the service's user
        key_file = settings.data_dir / "households-keys" / "personal-data.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert len(base64.b64decode(key_file.read_text().strip())) == 32

    # reopened with the same key, the application reads it all back
    again = Households(settings)
    try:
        assert again.repository.get(UUID(hid)).head.name == HEAD
    finally:
        again.close()


def test_a_wrong_key_stops_the_service_with_a_clear_error(settings_for):
    settings = settings_for("households", NATS_URL="nats://127.0.0.1:1")
    with TestClient(create(settings)) as client:
        assert client.post("/households", json=registration(), headers=signed_in(settings)).status_code == 201

    wrong = base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(PersonalDataKeyError, match="cannot be decrypted with the configured key"):
        Households(settings_for("households", PERSONAL_DATA_KEY=wrong))
    with pytest.raises(PersonalDataKeyError):
        with TestClient(create(settings_for("households", NATS_URL="nats://127.0.0.1:1", PERSONAL_DATA_KEY=wrong))):
            pass


def test_the_key_comes_from_settings_or_a_key_file(tmp_path: Path):
    key = base64.b64encode(os.urandom(32)).decode()
    key_file = tmp_path / "pd.key"
    key_file.write_text(key + "\n")
    from_env = Settings.from_env("households", {"DATA_DIR": str(tmp_path / "a"), "PERSONAL_DATA_KEY": key})
    from_file = Settings.from_env("households", {"DATA_DIR": str(tmp_path / "b"),
                                                 "PERSONAL_DATA_KEY_FILE": str(key_file)})
    assert from_env.eventsourcing_env()["CIPHER_KEY"] == from_file.eventsourcing_env()["CIPHER_KEY"] == key
    assert from_env.eventsourcing_env()["CIPHER_TOPIC"] == "eventsourcing.cryptography:AESCipher"
    assert key not in repr(from_env)
    assert not (tmp_path / "a" / "households-keys").exists()  # nothing generated when a key is given
    # relief and the ledger hold no personal data: their stores are not encrypted
    assert "CIPHER_KEY" not in Settings.from_env("relief", {"DATA_DIR": str(tmp_path)}).eventsourcing_env()
    assert "CIPHER_KEY" not in Settings.from_env("ledger", {"DATA_DIR": str(tmp_path)}).eventsourcing_env()
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(RuntimeError, match="PERSONAL_DATA_KEY"):
            Settings.from_env("households", {"DATA_DIR": str(tmp_path), "PERSONAL_DATA_KEY": bad}).eventsourcing_env()
    with pytest.raises(RuntimeError, match="does not exist"):
        Settings.from_env("households", {"DATA_DIR": str(tmp_path),
                                         "PERSONAL_DATA_KEY_FILE": str(tmp_path / "missing")}).eventsourcing_env()

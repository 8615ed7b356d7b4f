"""Signed tokens: any service verifies them from the public keys alone; rotation keeps old tokens valid."""

import time

import jwt
import pytest

from services.common.auth import Forbidden, KeyRing, Principal, Role, Unauthenticated

STAFF = Principal("user:lan", "lan", Role.commune_staff, frozenset({"26734"}))


def test_a_token_from_the_issuer_is_trusted_by_a_verifier_with_only_public_keys(tmp_path):
    issuer = KeyRing(tmp_path).ensure()
    token = issuer.issue(STAFF)
    for private in tmp_path.glob("*.key.pem"):
        private.unlink()  # relief and ledger hold no signing key
    assert KeyRing(tmp_path).verify(token) == STAFF


def test_rotation_keeps_earlier_tokens_until_their_key_is_retired(tmp_path):
    ring = KeyRing(tmp_path).ensure()
    old_kid, old_token = ring.current_kid(), ring.issue(STAFF)
    ring.rotate()
    verifier = KeyRing(tmp_path)
    assert verifier.verify(old_token) == STAFF
    assert verifier.verify(ring.issue(STAFF)) == STAFF
    ring.retire(old_kid)
    with pytest.raises(Unauthenticated):
        KeyRing(tmp_path).verify(old_token)


def test_the_current_key_cannot_be_retired(tmp_path):
    ring = KeyRing(tmp_path).ensure()
    with pytest.raises(ValueError):
        ring.retire(ring.current_kid())


@pytest.mark.parametrize("tamper", ["expired", "foreign key", "edited claims", "garbage"])
def test_a_bad_token_is_refused(tmp_path, tamper):
    ring = KeyRing(tmp_path).ensure()
    if tamper == "expired":
        token = ring.issue(STAFF, hours=-1)
    elif tamper == "foreign key":
        token = KeyRing(tmp_path / "elsewhere").ensure().issue(STAFF)
        token = jwt.encode(jwt.decode(token, options={"verify_signature": False}),
                           _private_of(tmp_path / "elsewhere"), algorithm="EdDSA",
                           headers={"kid": ring.current_kid()})
    elif tamper == "edited claims":
        head, body, sig = ring.issue(STAFF).split(".")
        admin = jwt.utils.base64url_encode(b'{"sub":"user:lan","name":"lan","role":"admin","communes":["*"],'
                                           b'"iss":"mttq-relief","iat":%d,"exp":%d}'
                                           % (time.time(), time.time() + 3600)).decode()
        token = f"{head}.{admin}.{sig}"
    else:
        token = "not-a-token"
    with pytest.raises(Unauthenticated):
        ring.verify(token)


def _private_of(folder):
    from cryptography.hazmat.primitives import serialization
    kid = (folder / "current").read_text()
    return serialization.load_pem_private_key((folder / f"{kid}.key.pem").read_bytes(), None)


def test_scope_rules():
    STAFF.check_commune("26734")
    with pytest.raises(Forbidden):
        STAFF.check_commune("00004")
    with pytest.raises(Forbidden):
        STAFF.check_role(Role.relief_officer)
    auditor = Principal("user:an", "an", Role.auditor, frozenset())
    auditor.check_commune("00004")  # auditors read everywhere
    Principal("user:root", "root", Role.admin, frozenset()).check_role(Role.volunteer)

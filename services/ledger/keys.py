"""The ledger's Ed25519 signing key.

LEDGER_SIGNING_KEY (base64 of a raw 32-byte seed) wins; otherwise the seed is read from
DATA_DIR/ledger/signing-key, which is created (mode 0600) on first start. Back that file up:
a new key cannot sign checkpoints that extend the old ones under the same key id.
"""

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.ledger.export_format import b64, key_id

KEY_FILE = "signing-key"


class SigningKey:
    def __init__(self, private: Ed25519PrivateKey):
        self._private = private
        self.public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = b64(self.public_raw)
        self.key_id = key_id(self.public_raw)

    def sign(self, message: bytes) -> str:
        return b64(self._private.sign(message))

    @classmethod
    def load(cls, seed_b64: str | None, directory: Path) -> "SigningKey":
        if seed_b64:
            return cls(_from_seed(seed_b64))
        path = directory / KEY_FILE
        if not path.exists():
            seed = base64.b64encode(os.urandom(32))
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(fd, "wb") as out:
                    out.write(seed + b"\n")
                    out.flush()
                    os.fsync(out.fileno())
        return cls(_from_seed(path.read_text().strip()))


def _from_seed(seed_b64: str) -> Ed25519PrivateKey:
    seed = base64.b64decode(seed_b64, validate=True)
    if len(seed) != 32:
        raise ValueError("LEDGER_SIGNING_KEY must be base64 of 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)

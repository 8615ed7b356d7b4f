"""Who may do what: roles scoped to communes, carried by signed tokens every service checks alone.

Households holds the accounts and signs tokens (Ed25519, JWT `EdDSA`) with the current key of
the key ring in AUTH_KEYS_DIR; relief and ledger only need the public keys in that folder, so
no service calls another to know who is asking. Rotating adds a key and makes it current; older
public keys keep verifying tokens already handed out until they are retired.
"""

import os
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Iterable

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.errors import DomainError

ISSUER = "mttq-relief"
EVERYWHERE = "*"


class Role(StrEnum):
    volunteer = "volunteer"  # records deliveries in their communes
    commune_staff = "commune_staff"  # registers and looks up households in their communes
    relief_officer = "relief_officer"  # campaigns, donations, rounds of their committee
    auditor = "auditor"  # reads everything, writes nothing
    admin = "admin"  # manages users; may do everything


ROLE_NAMES_VI = {Role.volunteer: "tình nguyện viên", Role.commune_staff: "cán bộ xã/phường",
                 Role.relief_officer: "cán bộ cứu trợ", Role.auditor: "kiểm toán viên",
                 Role.admin: "quản trị viên"}


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"

    def __init__(self, reason_en: str = "sign in first"):
        super().__init__("Cần đăng nhập (thiếu hoặc sai mã đăng nhập).", f"Authentication required: {reason_en}.")


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    role: Role
    communes: frozenset[str]

    @property
    def everywhere(self) -> bool:
        return self.role in (Role.admin, Role.auditor) or EVERYWHERE in self.communes

    def covers(self, commune: str | None) -> bool:
        return self.everywhere or (commune is not None and commune in self.communes)

    def check_commune(self, commune: str | None, what_vi: str = "hộ này", what_en: str = "this household") -> None:
        if not self.covers(commune):
            raise Forbidden(f"Bạn không được giao phụ trách xã/phường {commune} ({what_vi}).",
                            f"{self.username} ({self.role}) is not assigned to commune {commune} ({what_en}).",
                            commune=commune, role=self.role, your_communes=sorted(self.communes))

    def check_role(self, *roles: Role) -> None:
        if self.role not in roles and self.role != Role.admin:
            allowed = ", ".join(ROLE_NAMES_VI[r] for r in roles)
            raise Forbidden(f"Vai trò {ROLE_NAMES_VI[self.role]} không được làm việc này (cần: {allowed}).",
                            f"role {self.role} may not do this (needs: {', '.join(roles)}).",
                            role=self.role, allowed_roles=list(roles))

    def claims(self) -> dict[str, Any]:
        return {"sub": self.user_id, "name": self.username, "role": str(self.role),
                "communes": sorted(self.communes)}

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> "Principal":
        return cls(user_id=str(claims["sub"]), username=str(claims["name"]), role=Role(claims["role"]),
                   communes=frozenset(str(c) for c in claims.get("communes", [])))


class KeyRing:
    """Ed25519 keys in one folder: `<kid>.pub.pem` verify, `<kid>.key.pem` sign, `current` names the signer."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._public: dict[str, Ed25519PublicKey] = {}

    def ensure(self) -> "KeyRing":
        """Create a first key if the folder has none (a fresh `make run`)."""
        if not (self.folder / "current").exists():
            self.rotate()
        return self

    def rotate(self) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        kid = time.strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(3)
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        _write(self.folder / f"{kid}.key.pem", private, mode=0o600)
        _write(self.folder / f"{kid}.pub.pem", key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        _write(self.folder / "current", kid.encode())
        return kid

    def retire(self, kid: str) -> None:
        """Stop accepting tokens signed by `kid` (never the current key)."""
        if kid == self.current_kid():
            raise ValueError("rotate first: the current signing key cannot be retired")
        for suffix in (".pub.pem", ".key.pem"):
            (self.folder / f"{kid}{suffix}").unlink(missing_ok=True)
        self._public.pop(kid, None)

    def kids(self) -> list[str]:
        return sorted(p.name.removesuffix(".pub.pem") for p in self.folder.glob("*.pub.pem"))

    def current_kid(self) -> str | None:
        path = self.folder / "current"
        return path.read_text().strip() if path.exists() else None

    def issue(self, principal: Principal, hours: float = 12) -> str:
        kid = self.current_kid()
        if kid is None:
            raise RuntimeError(f"no signing key in {self.folder}: run `relief-admin keys rotate`")
        key = serialization.load_pem_private_key((self.folder / f"{kid}.key.pem").read_bytes(), None)
        now = int(time.time())
        claims = {**principal.claims(), "iss": ISSUER, "iat": now, "exp": now + int(hours * 3600),
                  "jti": secrets.token_hex(8)}
        return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})

    def verify(self, token: str) -> Principal:
        try:
            kid = jwt.get_unverified_header(token).get("kid", "")
            claims = jwt.decode(token, self._public_key(kid), algorithms=["EdDSA"], issuer=ISSUER,
                                options={"require": ["exp", "iat", "sub", "iss"]})
            return Principal.from_claims(claims)
        except (jwt.PyJWTError, KeyError, ValueError) as error:
            raise Unauthenticated(str(error) or type(error).__name__) from None

    def _public_key(self, kid: str) -> Ed25519PublicKey:
        if kid not in self._public:  # a key rotated in since start: read the folder again
            path = self.folder / f"{Path(kid).name}.pub.pem"
            if not kid or not path.exists():
                raise ValueError(f"unknown signing key {kid!r}")
            self._public[kid] = serialization.load_pem_public_key(path.read_bytes())
        return self._public[kid]


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.replace(tmp, path)


_bearer = HTTPBearer(auto_error=False, description="Mã đăng nhập / token from households `POST /auth/token`")


async def principal(request: Request,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
    """FastAPI dependency: the signed-in user, or 401. Async on purpose: checking a signature is
    quick CPU work, and a sync dependency would cost every request a hop to the thread pool."""
    if credentials is None:
        raise Unauthenticated("no bearer token")
    return request.app.state.keyring.verify(credentials.credentials)


def require(*roles: Role):
    """FastAPI dependency factory: a signed-in user with one of `roles` (admin always passes), or 403."""
    async def dependency(who: Annotated[Principal, Depends(principal)]) -> Principal:
        who.check_role(*roles)
        return who
    return dependency


SignedIn = Annotated[Principal, Depends(principal)]
Reader = Annotated[Principal, Depends(require(*Role))]


def token_for(keys_dir: Path, username: str = "admin", role: Role = Role.admin,
              communes: Iterable[str] = (EVERYWHERE,), hours: float = 12) -> str:
    """A token signed with the current key in `keys_dir` (CLI, demo, tests)."""
    who = Principal(user_id=f"user:{username}", username=username, role=Role(role), communes=frozenset(communes))
    return KeyRing(keys_dir).ensure().issue(who, hours)

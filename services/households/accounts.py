"""User accounts: who may sign in, with which role, in which communes.

Households issues the tokens (it holds personal data anyway). A user's id is a random uuid,
never derived from the name: the ledger stores it as the volunteer id. A username is taken
once: its claim's id derives from the name, so a second claim collides on the store's unique
(id, version) key, as a head's CCCD does. Passwords are kept as argon2id hashes only.
None of these events is published: the outbox publishes `Household.Event`s alone.
"""

import re
from typing import Any, Iterable
from uuid import UUID, uuid4, uuid5

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.domain import Aggregate, event

from services.common.auth import EVERYWHERE, Principal, Role, Unauthenticated
from services.common.errors import Conflict, Invalid, NotFound
from services.households.domain import NAMESPACE, check_commune, check_text

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 256
WIDE_ROLES = (Role.auditor, Role.admin)  # may hold "*" (every commune)
ATTEMPTS = 3
hasher = PasswordHasher()
_DUMMY_HASH = hasher.hash("not a password, only for equal timing")


def spend_hash_time(password: str) -> None:
    """As long as checking a password, for a name that has none: a miss takes the same time."""
    try:
        hasher.verify(_DUMMY_HASH, password.encode("utf-8", "replace"))
    except (VerificationError, InvalidHashError):
        pass


# ---- named errors ---------------------------------------------------------------

class UsernameTaken(Conflict):
    code = "username_taken"

    def __init__(self, existing: dict[str, Any]):
        super().__init__("Tên đăng nhập này đã có người dùng", "This username is already taken", user=existing)


class UserNotFound(NotFound):
    def __init__(self, username: str):
        super().__init__("Không tìm thấy người dùng", "User not found", username=username)


class BadCredentials(Unauthenticated):
    code = "bad_credentials"

    def __init__(self) -> None:
        super(Unauthenticated, self).__init__(
            "Sai tên đăng nhập hoặc mật khẩu, hoặc tài khoản đã bị khoá.",
            "Wrong username or password, or the account is disabled.")


class LastAdmin(Conflict):
    code = "last_admin"

    def __init__(self) -> None:
        super().__init__("Phải còn ít nhất một quản trị viên đang hoạt động",
                         "At least one active admin must remain")


# ---- value checks ---------------------------------------------------------------

def check_username(value: str, field: str = "username") -> str:
    name = str(value).strip().lower()
    if not USERNAME.match(name):
        raise Invalid(field, "Tên đăng nhập: 2-63 ký tự a-z, 0-9, dấu chấm, gạch ngang hoặc gạch dưới",
                      "Username: 2-63 characters a-z, 0-9, dot, dash or underscore")
    return name


def check_password(value: str, field: str = "password") -> str:
    if not MIN_PASSWORD <= len(str(value)) <= MAX_PASSWORD:
        raise Invalid(field, f"Mật khẩu phải dài từ {MIN_PASSWORD} đến {MAX_PASSWORD} ký tự",
                      f"The password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    if not _is_text(value):
        raise Invalid(field, "Mật khẩu có ký tự không hợp lệ", "The password holds characters that are not text")
    return str(value)


def _is_text(value: str) -> bool:
    """False for lone surrogates (JSON lets them through; UTF-8 cannot carry them)."""
    try:
        str(value).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def check_role(value: str, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        allowed = ", ".join(Role)
        raise Invalid(field, f"Vai trò phải là một trong: {allowed}", f"Role must be one of: {allowed}") from None


def check_communes(role: Role, communes: Iterable[str], field: str = "communes") -> list[str]:
    """Commune codes of the current list; "*" only for auditors and admins, who get it by default."""
    codes = [str(c).strip() for c in communes]
    if EVERYWHERE in codes:
        if role not in WIDE_ROLES:
            raise Invalid(field, "Chỉ kiểm toán viên và quản trị viên được giao mọi xã (*)",
                          "Only auditors and admins may hold every commune (*)")
        return [EVERYWHERE]
    if not codes:
        if role in WIDE_ROLES:
            return [EVERYWHERE]
        raise Invalid(field, "Cần giao ít nhất một xã/phường", "Assign at least one commune")
    return sorted({check_commune(code, field) for code in codes})


# ---- aggregates -----------------------------------------------------------------

class User(Aggregate):
    @classmethod
    def create(cls, username: str, password: str, role: str, communes: Iterable[str], actor: str,
               display_name: str | None = None) -> "User":
        role = check_role(role)
        name = check_username(username)
        return cls(username=name, display_name=check_text(display_name or name, "display_name", max_length=100),
                   role=role.value, communes=check_communes(role, communes),
                   password_hash=hasher.hash(check_password(password)), actor=actor, id=uuid4())

    @event("Created")
    def __init__(self, id: UUID, username: str, display_name: str, role: str, communes: list[str],  # noqa: A002
                 password_hash: str, actor: str):
        self.username = username
        self.display_name = display_name
        self.role = role
        self.communes = communes
        self.password_hash = password_hash
        self.active = True

    def change(self, actor: str, **changes: Any) -> bool:
        """Role, communes, active flag, display name; False if nothing changed."""
        role = check_role(changes.get("role", self.role))
        checked: dict[str, Any] = {}
        if "role" in changes or "communes" in changes:
            checked["role"] = role.value
            checked["communes"] = check_communes(role, changes.get("communes", self.communes))
        if changes.get("active") is not None:
            checked["active"] = bool(changes["active"])
        if changes.get("display_name") is not None:
            checked["display_name"] = check_text(changes["display_name"], "display_name", max_length=100)
        checked = {k: v for k, v in checked.items() if getattr(self, k) != v}
        if checked:
            self._changed(changes=checked, actor=actor)
        return bool(checked)

    @event("Changed")
    def _changed(self, changes: dict, actor: str) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    def set_password(self, password: str, actor: str) -> None:
        self._password_set(password_hash=hasher.hash(check_password(password)), actor=actor)

    @event("PasswordSet")
    def _password_set(self, password_hash: str, actor: str) -> None:
        self.password_hash = password_hash

    def password_matches(self, password: str) -> bool:
        if not _is_text(password):
            return False
        try:
            return hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    @property
    def is_admin(self) -> bool:
        return self.active and self.role == Role.admin

    def principal(self) -> Principal:
        return Principal(user_id=str(self.id), username=self.username, role=Role(self.role),
                         communes=frozenset(self.communes))

    def view(self) -> dict[str, Any]:
        """What an admin sees of an account: never the hash."""
        return {"user_id": str(self.id), "username": self.username, "display_name": self.display_name,
                "role": self.role, "communes": list(self.communes), "active": self.active,
                "created_at": self.created_on.isoformat(), "updated_at": self.modified_on.isoformat()}


class UsernameClaim(Aggregate):
    """Once-only claim of a username, pointing at the user's random id."""

    @staticmethod
    def id_for(username: str) -> UUID:
        return uuid5(NAMESPACE, f"username:{username}")

    @event("Claimed")
    def __init__(self, id: UUID, user_id: UUID, actor: str):  # noqa: A002
        self.user_id = user_id


class UserDirectory(Aggregate):
    """The list of accounts (a few hundred), so listing needs no scan of the event log."""

    ID = uuid5(NAMESPACE, "user-directory")

    @event("Started")
    def __init__(self, id: UUID):  # noqa: A002
        self.users: dict[str, UUID] = {}

    @event("Listed")
    def add(self, username: str, user_id: UUID) -> None:
        self.users[username] = user_id

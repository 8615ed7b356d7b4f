"""Commands on accounts, over the households store: create, change, sign in, list."""

import secrets
from pathlib import Path
from typing import Any

from eventsourcing.persistence import IntegrityError

from services.common.auth import Role
from services.common.errors import Conflict
from services.common.store import ServiceApplication
from services.households.accounts import (ATTEMPTS, BadCredentials, LastAdmin, User, UserDirectory, UserNotFound,
                                          UsernameClaim, UsernameTaken, check_username, hasher, spend_hash_time)

DEMO_ADMIN = "admin"


class Accounts:
    def __init__(self, app: ServiceApplication):
        self.app = app

    def create(self, actor: str, username: str, password: str, role: str, communes: list[str],
               display_name: str | None = None) -> User:
        user = User.create(username, password, role, communes, actor, display_name)
        claim = UsernameClaim(id=UsernameClaim.id_for(user.username), user_id=user.id, actor=actor)
        events = [*user.collect_events(), *claim.collect_events()]
        for _ in range(ATTEMPTS):
            directory = self._directory()
            directory.add(user.username, user.id)
            try:
                self.app.save(*events, directory)
                return user
            except IntegrityError:
                existing = self.find(user.username)
                if existing is not None:
                    raise UsernameTaken(existing.view()) from None
                # someone added another user at the same moment: the directory moved on, retry
        raise _busy()

    def find(self, username: str) -> User | None:
        try:
            name = check_username(username)
        except Exception:  # noqa: BLE001 - a malformed name is no user
            return None
        claim = self.app.get_or_none(UsernameClaim.id_for(name))
        return None if claim is None else self.app.repository.get(claim.user_id)

    def get(self, username: str) -> User:
        user = self.find(username)
        if user is None:
            raise UserNotFound(username)
        return user

    def list(self) -> list[User]:
        directory = self.app.get_or_none(UserDirectory.ID)
        users = directory.users.values() if directory is not None else []
        return [self.app.repository.get(user_id) for user_id in users]

    def any_admin(self) -> bool:
        return any(user.is_admin for user in self.list())

    def change(self, username: str, actor: str, password: str | None = None, **changes: Any) -> User:
        for _ in range(ATTEMPTS):
            user = self.get(username)
            was_admin = user.is_admin
            user.change(actor, **changes)
            if password is not None:
                user.set_password(password, actor)
            if was_admin and not user.is_admin and not self._other_admin(user):
                raise LastAdmin()
            try:
                self.app.save(user)
                return user
            except IntegrityError:
                continue
        raise _busy()

    def authenticate(self, username: str, password: str) -> User:
        """The active user with this password, or 401 (the same answer, in the same time, for any miss)."""
        user = self.find(username)
        if user is None:
            spend_hash_time(password)
            raise BadCredentials()
        if not user.password_matches(password) or not user.active:
            raise BadCredentials()
        if hasher.check_needs_rehash(user.password_hash):
            user.set_password(password, user.username)
            try:
                self.app.save(user)
            except IntegrityError:
                pass  # changed meanwhile: rehash at the next sign-in
        return user

    def _other_admin(self, user: User) -> bool:
        return any(other.is_admin for other in self.list() if other.id != user.id)

    def _directory(self) -> UserDirectory:
        directory = self.app.get_or_none(UserDirectory.ID)
        return directory if directory is not None else UserDirectory(id=UserDirectory.ID)


def _busy() -> Conflict:
    return Conflict("Danh sách người dùng vừa được người khác sửa, vui lòng thử lại",
                    "The user list was changed at the same time; please retry")


def ensure_demo_admin(app: ServiceApplication, remember: Path) -> tuple[str, str] | None:
    """`make run` on a fresh store: an admin with a random password, kept in `remember`.

    Returns (username, password) to print, or None if admins exist and the file is gone or stale."""
    accounts = Accounts(app)
    if not accounts.any_admin():
        password = secrets.token_urlsafe(12)
        try:
            accounts.create("make-run", DEMO_ADMIN, password, Role.admin, ["*"], "Quản trị (demo)")
        except Conflict:  # an `admin` exists but is disabled or demoted: reset it
            accounts.change(DEMO_ADMIN, "make-run", password=password, role=Role.admin, communes=["*"], active=True)
        remember.parent.mkdir(parents=True, exist_ok=True)
        remember.touch(mode=0o600)
        remember.write_text(f"{DEMO_ADMIN}\n{password}\n")
    if not remember.exists():
        return None
    username, password = remember.read_text().split()[:2]
    user = accounts.find(username)
    if user is None or not user.active or not user.password_matches(password):
        return None  # the password was changed since: the file no longer signs anyone in
    return username, password

"""Sign-in for tests: an `Authorization` header signed with the key ring the service under test uses."""

from pathlib import Path

from services.common.auth import EVERYWHERE, Role, token_for
from services.common.settings import Settings


def signed_in(where: Settings | Path | str, role: Role = Role.admin, communes=(EVERYWHERE,),
              username: str = "test-admin") -> dict[str, str]:
    """Headers for a user of `role` in `communes`; `where` is the service's settings or its AUTH_KEYS_DIR."""
    keys = where.keys_dir if isinstance(where, Settings) else Path(where)
    return {"Authorization": f"Bearer {token_for(keys, username, role, communes)}"}

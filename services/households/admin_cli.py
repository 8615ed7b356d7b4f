"""`relief-admin`: accounts and signing keys, on the households store directly.

    relief-admin users create --username lan --role commune_staff --commune 00070 [--password ...]
    relief-admin users list | users disable lan
    relief-admin keys rotate | keys list | keys retire KID

Settings come from the environment as for the service (DATA_DIR, PERSISTENCE_MODULE, AUTH_KEYS_DIR...).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from services.common.auth import KeyRing, Role
from services.common.errors import DomainError, Invalid
from services.common.settings import Settings
from services.households.application import Households
from services.households.users import Accounts

cli = typer.Typer(help="Quản trị tài khoản và khoá ký / accounts and signing keys", no_args_is_help=True)
users = typer.Typer(help="Tài khoản / accounts", no_args_is_help=True)
keys = typer.Typer(help="Khoá ký mã đăng nhập / token signing keys", no_args_is_help=True)
cli.add_typer(users, name="users")
cli.add_typer(keys, name="keys")
ACTOR = "relief-admin"


def settings() -> Settings:
    return Settings.from_env("households")


@contextmanager
def accounts() -> Iterator[Accounts]:
    app = Households(settings())
    try:
        yield Accounts(app)
    except DomainError as error:
        typer.echo(f"{error.message_vi} / {error.message_en}{_field(error)}", err=True)
        raise typer.Exit(1) from None
    finally:
        app.close()


def _field(error: DomainError) -> str:
    return f" ({error.field})" if isinstance(error, Invalid) else ""


@users.command("create")
def create_user(username: Annotated[str, typer.Option(help="a-z, 0-9, . _ -")],
                role: Annotated[Role, typer.Option()],
                commune: Annotated[list[str], typer.Option(help="commune code; repeat for several; * = all")] = [],
                display_name: Annotated[str | None, typer.Option()] = None,
                password: Annotated[str | None, typer.Option(help="asked for if not given")] = None) -> None:
    """Tạo tài khoản / create an account."""
    if password is None:
        password = typer.prompt("Mật khẩu / password", hide_input=True, confirmation_prompt=True)
    with accounts() as book:
        user = book.create(ACTOR, username, password, role, commune, display_name)
    typer.echo(f"created {user.username} ({user.role}, {', '.join(user.communes)}) id {user.id}")


@users.command("list")
def list_users() -> None:
    """Liệt kê tài khoản / list accounts."""
    with accounts() as book:
        for user in sorted(book.list(), key=lambda u: u.username):
            state = "active" if user.active else "disabled"
            typer.echo(f"{user.username}\t{user.role}\t{','.join(user.communes)}\t{state}\t{user.id}")


@users.command("disable")
def disable_user(username: str) -> None:
    """Khoá tài khoản (đăng nhập mới bị từ chối) / disable an account (new sign-ins refused)."""
    with accounts() as book:
        book.change(username, ACTOR, active=False)
    typer.echo(f"disabled {username}; tokens already issued last until they expire (or rotate and retire keys)")


@keys.command("rotate")
def rotate_key() -> None:
    """Tạo khoá ký mới / make a new signing key current (older keys still verify)."""
    typer.echo(f"current signing key: {KeyRing(settings().keys_dir).rotate()}")


@keys.command("list")
def list_keys() -> None:
    """Liệt kê khoá / list keys; * marks the current one."""
    ring = KeyRing(settings().keys_dir)
    current = ring.current_kid()
    for kid in ring.kids():
        typer.echo(f"{'*' if kid == current else ' '} {kid}")


@keys.command("retire")
def retire_key(kid: str) -> None:
    """Thu hồi khoá: mã ký bằng khoá này hết hiệu lực / retire a key: its tokens stop working."""
    ring = KeyRing(settings().keys_dir)
    if kid not in ring.kids():
        typer.echo(f"Không có khoá này / no such key: {kid}", err=True)
        raise typer.Exit(1)
    try:
        ring.retire(kid)
    except ValueError as error:
        typer.echo(f"Không thu hồi được khoá đang dùng / {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"retired {kid}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()

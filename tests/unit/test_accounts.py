"""Accounts: unique names by claim, argon2 hashes only, nothing on the bus, and the admin CLI."""

import pytest
from typer.testing import CliRunner

from services.common.auth import KeyRing, Role
from services.common.errors import Invalid
from services.common.settings import Settings
from services.households.accounts import BadCredentials, LastAdmin, User, UsernameTaken
from services.households.admin_cli import cli
from services.households.application import Households, to_contract
from services.households.main import spec
from services.households.users import Accounts, ensure_demo_admin

WARD = "00070"
PASSWORD = "mat-khau-rat-dai-123"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env("households", {"DATA_DIR": str(tmp_path / "var")})


@pytest.fixture
def app(settings):
    application = Households(settings)
    yield application
    application.close()


def test_a_username_is_taken_once_whatever_its_case(app):
    accounts = Accounts(app)
    first = accounts.create("root", "Lan", PASSWORD, "commune_staff", [WARD])
    with pytest.raises(UsernameTaken) as taken:
        Accounts(app).create("root", "lan", "khac-mat-khau", "volunteer", [WARD])
    assert taken.value.details["user"]["user_id"] == str(first.id)
    assert [u.username for u in accounts.list()] == ["lan"]
    assert "lan" not in str(first.id)  # an opaque id: the ledger stores it


@pytest.mark.parametrize("role, communes, field", [
    ("volunteer", ["*"], "communes"), ("commune_staff", [], "communes"), ("volunteer", ["99999"], "communes"),
    ("boss", [WARD], "role"),
])
def test_bad_accounts_are_refused_naming_the_field(role, communes, field):
    with pytest.raises(Invalid) as error:
        User.create("lan", PASSWORD, role, communes, "root")
    assert error.value.field == field


def test_sign_in_checks_password_and_active_flag(app):
    accounts = Accounts(app)
    accounts.create("root", "lan", PASSWORD, "commune_staff", ["70"])
    assert accounts.authenticate("lan", PASSWORD).principal().communes == {WARD}
    for username, password in (("lan", "sai-mat-khau"), ("khong-co", PASSWORD)):
        with pytest.raises(BadCredentials):
            accounts.authenticate(username, password)
    accounts.change("lan", "root", active=False)
    with pytest.raises(BadCredentials):
        accounts.authenticate("lan", PASSWORD)


def test_the_last_active_admin_stays(app):
    accounts = Accounts(app)
    accounts.create("root", "boss", PASSWORD, "admin", [])
    with pytest.raises(LastAdmin):
        accounts.change("boss", "root", role="auditor")
    accounts.create("root", "boss2", PASSWORD, "admin", ["*"])
    assert accounts.change("boss", "root", active=False).active is False


def test_only_argon2_hashes_are_stored_and_no_account_event_is_published(app):
    accounts = Accounts(app)
    accounts.create("root", "lan", PASSWORD, "commune_staff", [WARD])
    accounts.change("lan", "root", password="mat-khau-moi-456")
    notifications = app.recorder.select_notifications(1, 100)
    assert notifications
    for notification in notifications:
        assert PASSWORD.encode() not in notification.state and b"mat-khau-moi-456" not in notification.state
    events = [app.mapper.to_domain_event(n) for n in notifications]
    hashes = [e.password_hash for e in events if hasattr(e, "password_hash")]
    assert len(hashes) == 2 and all(h.startswith("$argon2id$") for h in hashes)
    assert all(to_contract(e) is None for e in events)
    assert not any(isinstance(e, spec.published_from) for e in events)


def test_make_run_gets_a_demo_admin_once_and_remembers_it(app, tmp_path):
    remember = tmp_path / "demo-admin.txt"
    username, password = ensure_demo_admin(app, remember)
    assert ensure_demo_admin(app, remember) == (username, password)
    assert Accounts(app).authenticate(username, password).role == Role.admin
    assert len(Accounts(app).list()) == 1
    Accounts(app).change(username, "root", password="doi-mat-khau-roi")
    assert ensure_demo_admin(app, remember) is None  # a stale file is not printed


def test_the_admin_cli_manages_accounts_and_keys(settings, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("AUTH_KEYS_DIR", raising=False)
    monkeypatch.delenv("PERSISTENCE_MODULE", raising=False)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == code, result.output
        return result.output

    run("users", "create", "--username", "lan", "--role", "commune_staff", "--commune", "70",
        "--commune", "00073", "--password", PASSWORD)
    prompted = runner.invoke(cli, ["users", "create", "--username", "hoa", "--role", "volunteer",
                                   "--commune", WARD], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    assert "taken" in run("users", "create", "--username", "lan", "--role", "admin", "--password", PASSWORD, code=1)
    assert "communes" in run("users", "create", "--username", "x1", "--role", "volunteer",
                             "--password", PASSWORD, code=1)
    run("users", "disable", "hoa")
    listed = run("users", "list")
    assert "lan\tcommune_staff\t00070,00073\tactive" in listed and "hoa\tvolunteer\t00070\tdisabled" in listed

    first = run("keys", "rotate").split()[-1]
    second = run("keys", "rotate").split()[-1]
    assert sorted(run("keys", "list").splitlines()) == [f"  {first}", f"* {second}"]
    run("keys", "retire", second, code=1)  # the current key stays
    run("keys", "retire", first)
    assert KeyRing(settings.keys_dir).kids() == [second]

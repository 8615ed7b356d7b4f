"""HTTP: sign in (OAuth2 password flow → Ed25519-signed bearer token) and, for admins, accounts."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.common.auth import EVERYWHERE, Principal, Role, SignedIn, require
from services.common.web import application
from services.households.accounts import MAX_PASSWORD, MIN_PASSWORD, USERNAME
from services.households.application import Households
from services.households.schemas import domain_rule
from services.households.domain import check_commune
from services.households.users import Accounts

router = APIRouter(tags=["auth"])
App = Annotated[Households, Depends(application)]
Admin = Annotated[Principal, Depends(require(Role.admin))]

Password = Annotated[str, Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)]
Username = Annotated[str, Field(pattern=USERNAME.pattern, description="a-z, 0-9, . _ -")]
Commune = Annotated[str, domain_rule(lambda code: code if code == EVERYWHERE else check_commune(code))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class UserIn(Strict):
    username: Username
    password: Password
    role: Role
    communes: list[Commune] = Field(default_factory=list, max_length=200, description='codes; "*" = every commune')
    display_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    @field_validator("username", mode="before")
    @classmethod
    def lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


class UserPatch(Strict):
    role: Role | None = None
    communes: list[Commune] | None = Field(None, max_length=200)
    active: bool | None = None
    password: Password | None = Field(None, description="a new password (reset)")
    display_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None


@router.post("/auth/token", summary="Sign in: username and password (form) → bearer token")
async def token(request: Request, app: App, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict:
    user = await run_in_threadpool(Accounts(app).authenticate, form.username, form.password)
    who = user.principal()
    hours = request.app.state.runtime.settings.auth_token_hours
    return {"access_token": request.app.state.keyring.issue(who, hours), "token_type": "bearer",
            "expires_in": int(hours * 3600), "user": _public(who)}


@router.get("/auth/me", summary="Who the token says you are")
def me(who: SignedIn) -> dict:
    return _public(who)


@router.post("/users", status_code=status.HTTP_201_CREATED, summary="Create an account (admin; 409 if taken)")
def create_user(body: UserIn, app: App, who: Admin) -> dict:
    return Accounts(app).create(who.username, body.username, body.password, body.role, body.communes,
                                body.display_name).view()


@router.get("/users", summary="Every account (admin)")
def list_users(app: App, who: Admin) -> dict:
    return {"items": sorted((u.view() for u in Accounts(app).list()), key=lambda u: u["username"])}


@router.patch("/users/{username}", summary="Change role, communes, active flag; reset the password (admin)")
def change_user(username: str, body: UserPatch, app: App, who: Admin) -> dict:
    changes = {k: getattr(body, k) for k in body.model_fields_set if getattr(body, k) is not None}
    return Accounts(app).change(username, who.username, **changes).view()


def _public(who: Principal) -> dict:
    return {"user_id": who.user_id, "username": who.username, "role": str(who.role),
            "communes": sorted(who.communes)}

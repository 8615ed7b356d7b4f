"""HTTP: the names a public disclosure (công khai, Decree 93 Art. 14) may print.

Relief holds household ids only. When it prints a beneficiary list it asks here for each
id's head-of-household name and village, and nothing else: no CCCD, phone, address, members
or health status. A merged duplicate answers with its survivor's name and place; the id
asked for is echoed so the caller can match its rows. Unknown ids are left out."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from services.common.web import application
from services.households.application import Households
from services.households.domain import HouseholdNotFound

router = APIRouter(prefix="/households", tags=["disclosure"])
MAX_IDS = 2000


class NamesIn(BaseModel):
    ids: list[UUID] = Field(max_length=MAX_IDS)


class DisclosureName(BaseModel):
    household_id: UUID
    head_name: str
    village: str
    commune_code: str


@router.post("/disclosure-names", summary="Head-of-household name and village for public disclosure, nothing else")
def disclosure_names(body: NamesIn, app: Annotated[Households, Depends(application)]) -> list[DisclosureName]:
    found = []
    for household_id in dict.fromkeys(body.ids):
        try:
            household = app.resolve(household_id)
        except HouseholdNotFound:
            continue
        found.append(DisclosureName(household_id=household_id, head_name=household.head.name,
                                    village=household.village, commune_code=household.commune_code))
    return found

"""Head-of-household names for public reports, fetched from households at request time.

Relief never stores a name (DESIGN guarantee 8): it asks households'
POST /households/disclosure-names for the ids on a beneficiary list, prints the answer and
forgets it. If households cannot answer, the caller prints ids and says why."""

import os
from collections.abc import Iterable
from typing import Protocol
from uuid import UUID

import httpx
from fastapi import Request

DEFAULT_URL = "http://127.0.0.1:8001"
CHUNK = 1000  # ids per request (households accepts up to 2000)


class HouseholdsUnavailable(Exception):
    """Households did not answer, or answered with an error."""


class HouseholdNames(Protocol):
    def names(self, ids: Iterable[UUID]) -> dict[UUID, dict]:
        """id -> {"head_name", "village", "commune_code"}; unknown ids are missing."""


class HttpHouseholds:
    def __init__(self, base_url: str | None = None, http: httpx.Client | None = None, timeout: float = 5.0):
        self.base_url = (base_url or os.environ.get("HOUSEHOLDS_URL") or DEFAULT_URL).rstrip("/")
        self.http = http  # a shared client (a TestClient in tests); otherwise one per call
        self.timeout = timeout

    def names(self, ids: Iterable[UUID]) -> dict[UUID, dict]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        if self.http is not None:
            return self._fetch(self.http, "", ids)
        with httpx.Client(timeout=self.timeout) as http:
            return self._fetch(http, self.base_url, ids)

    @staticmethod
    def _fetch(http: httpx.Client, base: str, ids: list[UUID]) -> dict[UUID, dict]:
        found: dict[UUID, dict] = {}
        for start in range(0, len(ids), CHUNK):
            try:
                response = http.post(f"{base}/households/disclosure-names",
                                     json={"ids": [str(i) for i in ids[start:start + CHUNK]]})
                response.raise_for_status()
                rows = response.json()
            except (httpx.HTTPError, ValueError) as error:
                raise HouseholdsUnavailable(str(error) or type(error).__name__) from error
            for row in rows:
                found[UUID(row["household_id"])] = {"head_name": row["head_name"], "village": row["village"],
                                                    "commune_code": row["commune_code"]}
        return found


def households_of(request: Request) -> HouseholdNames:
    """FastAPI dependency: `app.state.households` if set (tests), else HTTP to HOUSEHOLDS_URL."""
    found = getattr(request.app.state, "households", None)
    return found if found is not None else HttpHouseholds()

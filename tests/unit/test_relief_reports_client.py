"""The households client relief's disclosure uses: chunks, merged ids, failures as one error."""

import json
from uuid import uuid4

import httpx
import pytest

from services.relief import households_client
from services.relief.households_client import HouseholdsUnavailable, HttpHouseholds


def test_names_are_asked_in_chunks_and_mapped_by_the_id_asked(monkeypatch):
    monkeypatch.setattr(households_client, "CHUNK", 2)
    calls = []

    def answer(request: httpx.Request) -> httpx.Response:
        ids = json.loads(request.content)["ids"]
        calls.append(ids)
        return httpx.Response(200, json=[{"household_id": i, "head_name": f"Chủ hộ {i[:4]}", "village": "Thôn 1",
                                          "commune_code": "00070"} for i in ids[:1]])  # the second is unknown

    ids = [uuid4() for _ in range(3)]
    client = HttpHouseholds(http=httpx.Client(transport=httpx.MockTransport(answer), base_url="http://households"))
    found = client.names([*ids, ids[0]])
    assert [len(c) for c in calls] == [2, 1]  # duplicates asked once
    assert set(found) == {ids[0], ids[2]} and found[ids[0]]["head_name"] == f"Chủ hộ {str(ids[0])[:4]}"
    assert client.names([]) == {} and len(calls) == 2


@pytest.mark.parametrize("response", [httpx.Response(500), httpx.Response(200, text="not json")])
def test_an_error_answer_is_households_unavailable(response):
    client = HttpHouseholds(http=httpx.Client(transport=httpx.MockTransport(lambda _: response),
                                              base_url="http://households"))
    with pytest.raises(HouseholdsUnavailable):
        client.names([uuid4()])


def test_an_unreachable_households_is_households_unavailable(monkeypatch):
    monkeypatch.setenv("HOUSEHOLDS_URL", "http://127.0.0.1:1/")
    client = HttpHouseholds(timeout=1)
    assert client.base_url == "http://127.0.0.1:1"
    with pytest.raises(HouseholdsUnavailable):
        client.names([uuid4()])

"""`GET /crm/v6/{Module}` conformance (docs/zoho-crm-api.md §2)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from zoho_dagster.simulator import RunningSimulator

from .helpers import EVERY_RECORD, error, get, token

INFO_KEYS = {
    "call",
    "per_page",
    "next_page_token",
    "count",
    "page",
    "previous_page_token",
    "page_token_expiry",
    "sort_by",
    "sort_order",
    "email",
    "more_records",
}


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def test_fields_required(sim: RunningSimulator) -> None:
    resp = get(sim.primary, "/crm/v6/Leads", token(sim.primary))
    assert resp.status_code == 400
    body = error(resp)
    assert body["code"] == "REQUIRED_PARAM_MISSING" and body["details"] == {"param_name": "fields"}


def test_fields_at_most_50(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    names = [
        f["api_name"]
        for f in get(sim.primary, "/crm/v6/settings/fields", tok, {"module": "Leads"}).json()["fields"]
    ]
    assert get(sim.primary, "/crm/v6/Leads", tok, {"fields": ",".join(names[:50])}).status_code == 200
    resp = get(sim.primary, "/crm/v6/Leads", tok, {"fields": ",".join(names[:51])})
    assert resp.status_code == 400 and error(resp)["code"] == "LIMIT_EXCEEDED"


def test_per_page_over_200_is_rejected(sim: RunningSimulator) -> None:
    resp = get(sim.primary, "/crm/v6/Leads", token(sim.primary), {"fields": "Last_Name", "per_page": 201})
    assert resp.status_code == 400 and error(resp)["code"] == "INVALID_DATA"


def test_page_and_page_token_are_exclusive(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    first = get(sim.primary, "/crm/v6/Leads", tok, {"fields": "Last_Name"}).json()
    resp = get(
        sim.primary,
        "/crm/v6/Leads",
        tok,
        {"fields": "Last_Name", "page": 2, "page_token": first["info"]["next_page_token"]},
    )
    assert resp.status_code == 400 and error(resp)["code"] == "AMBIGUITY_DURING_PROCESSING"


def test_discrete_pagination_limit(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    params = {"fields": "Last_Name", **EVERY_RECORD}  # more than 2,000 Leads in all
    assert get(sim.primary, "/crm/v6/Leads", tok, {**params, "page": 10}).status_code == 200
    resp = get(sim.primary, "/crm/v6/Leads", tok, {**params, "page": 11})
    assert resp.status_code == 400
    assert resp.json() == {
        "code": "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
        "details": {"limit": 2000},
        "message": "You can only get the first 2000 records without using page_token param",
        "status": "error",
    }


def test_token_paging_walks_everything(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    params = {"fields": "Last_Name,Modified_Time", **EVERY_RECORD}
    seen: list[str] = []
    resp = get(org, "/crm/v6/Leads", tok, params)
    while True:
        body = resp.json()
        assert set(body["info"]) == INFO_KEYS
        seen += [r["id"] for r in body["data"]]
        info = body["info"]
        if not info["more_records"]:
            assert info["next_page_token"] is None
            break
        assert info["next_page_token"] and info["count"] == 200
        resp = get(org, "/crm/v6/Leads", tok, {**params, "page_token": info["next_page_token"]})
        assert resp.json()["info"]["previous_page_token"] == info["next_page_token"]
    truth = [r["id"] for r in sim.control.truth("Leads")["data"]]
    assert len(seen) > 2000
    assert seen == sorted(truth, key=int, reverse=True)  # default: id desc


def test_page_token_bound_to_params_and_header(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    since = {
        "If-Modified-Since": (datetime.now(timezone.utc) - timedelta(days=200)).isoformat(timespec="seconds")
    }
    first = get(org, "/crm/v6/Leads", tok, {"fields": "Last_Name"}, since).json()
    nxt = first["info"]["next_page_token"]
    for params, headers in [
        ({"fields": "Last_Name,Email"}, since),
        ({"fields": "Last_Name", "per_page": 100}, since),
        ({"fields": "Last_Name", "sort_order": "asc"}, since),
        ({"fields": "Last_Name"}, {}),
    ]:
        resp = get(org, "/crm/v6/Leads", tok, {**params, "page_token": nxt}, headers)
        assert resp.status_code == 400 and error(resp)["code"] == "TOKEN_BOUND_DATA_MISMATCH"
    assert (
        get(org, "/crm/v6/Leads", tok, {"fields": "Last_Name", "page_token": nxt}, since).status_code == 200
    )


def test_page_token_of_another_user(sim: RunningSimulator) -> None:
    other = {**sim.primary, **sim.control.add_client(["ZohoCRM.modules.ALL"], admin=False)}
    first = get(sim.primary, "/crm/v6/Leads", token(sim.primary), {"fields": "Last_Name"}).json()
    resp = get(
        other,
        "/crm/v6/Leads",
        token(other),
        {"fields": "Last_Name", "page_token": first["info"]["next_page_token"]},
    )
    assert resp.status_code == 400 and error(resp)["code"] == "INVALID_DATA"


def test_page_token_expires_after_24h(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    info = get(org, "/crm/v6/Leads", tok, {"fields": "Last_Name"}).json()["info"]
    expiry = _utc(info["page_token_expiry"])
    assert timedelta(hours=23, minutes=59) < expiry - datetime.now(timezone.utc) <= timedelta(hours=24)
    sim.control.advance_clock(86_401)
    fresh = token(org)  # the access token expired too
    resp = get(org, "/crm/v6/Leads", fresh, {"fields": "Last_Name", "page_token": info["next_page_token"]})
    assert resp.status_code == 400 and error(resp)["code"] == "EXPIRED_VALUE"


@pytest.mark.parametrize("sort_by", ["id", "Created_Time", "Modified_Time"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorting_is_total(sim: RunningSimulator, sort_by: str, order: str) -> None:
    org, tok = sim.primary, token(sim.primary)
    # make ties and out-of-order overlay records
    ids = [r["id"] for r in sim.control.truth("Leads")["data"][:3]]
    for rid in ids:
        sim.control.update("Leads", rid, {"Modified_Time": "2020-01-01T00:00:00+00:00"})
    params = {
        "fields": "Created_Time,Modified_Time",
        "sort_by": sort_by,
        "sort_order": order,
        "per_page": 200,
        **EVERY_RECORD,
    }
    rows = []
    resp = get(org, "/crm/v6/Leads", tok, params)
    while resp.status_code == 200:
        body = resp.json()
        assert body["info"]["sort_by"] == sort_by and body["info"]["sort_order"] == order
        rows += body["data"]
        if not body["info"]["more_records"]:
            break
        resp = get(org, "/crm/v6/Leads", tok, {**params, "page_token": body["info"]["next_page_token"]})

    def key(r: dict[str, str]) -> tuple[object, int]:
        return ((int(r["id"]) if sort_by == "id" else _utc(r[sort_by])), int(r["id"]))

    assert rows == sorted(rows, key=key, reverse=order == "desc")
    assert len({r["id"] for r in rows}) == len(rows) == len(sim.control.truth("Leads")["data"])


def test_if_modified_since_inclusive_and_304(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    rid = sim.control.create(
        "Leads", {"Last_Name": "Inclusive", "Modified_Time": "2099-01-01T10:00:00+05:30"}
    )
    resp = get(
        org, "/crm/v6/Leads", tok, {"fields": "Last_Name"}, {"If-Modified-Since": "2099-01-01T04:30:00+00:00"}
    )
    assert resp.status_code == 200 and [r["id"] for r in resp.json()["data"]] == [rid]
    later = get(
        org, "/crm/v6/Leads", tok, {"fields": "Last_Name"}, {"If-Modified-Since": "2099-01-01T10:00:01+05:30"}
    )
    assert later.status_code == 304 and later.content == b""


def test_empty_module_is_204(sim: RunningSimulator) -> None:
    org = sim.connection["orgs"][2]
    tok = token(org)
    for row in sim.control.truth("Vendors", org=org["org_id"])["data"]:
        sim.control.delete("Vendors", row["id"], org=org["org_id"])
    resp = get(org, "/crm/v6/Vendors", tok, {"fields": "Vendor_Name"})
    assert resp.status_code == 204 and resp.content == b""


def test_invalid_module(sim: RunningSimulator) -> None:
    resp = get(sim.primary, "/crm/v6/Leadz", token(sim.primary), {"fields": "Last_Name"})
    assert resp.status_code == 400
    assert resp.json() == {
        "code": "INVALID_MODULE",
        "details": {"resource_path_index": 0},
        "message": "the module name given seems to be invalid",
        "status": "error",
    }


def test_only_requested_fields_plus_id(sim: RunningSimulator) -> None:
    """Of the fields, only the requested ones and ``id``; the record's ``$`` keys come as well
    (docs/zoho-crm-api.md §10, test_fidelity.py)."""
    resp = get(
        sim.primary, "/crm/v6/Leads", token(sim.primary), {"fields": "Full_Name,Created_By", "per_page": 5}
    )
    for row in resp.json()["data"]:
        assert {key for key in row if not key.startswith("$")} == {"Full_Name", "Created_By", "id"}


def test_ids_parameter(sim: RunningSimulator) -> None:
    truth = sim.control.truth("Leads")["data"]
    wanted = [truth[5]["id"], truth[100]["id"], truth[7]["id"]]
    params = {"fields": "Last_Name", "ids": ",".join(wanted), **EVERY_RECORD}
    resp = get(sim.primary, "/crm/v6/Leads", token(sim.primary), params)
    assert resp.status_code == 200
    assert sorted(r["id"] for r in resp.json()["data"]) == sorted(wanted)


def test_credit_per_call_in_stats(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    sim.control.reset_stats()
    for _ in range(3):
        get(sim.primary, "/crm/v6/Leads", tok, {"fields": "Last_Name"})
    get(sim.primary, "/crm/v6/Contacts", tok, {"fields": "Last_Name"})
    stats = sim.control.stats()
    assert stats["by_endpoint"] == {"GET /crm/v6/Leads": 3, "GET /crm/v6/Contacts": 1}
    assert stats["total_credits"] == 4 and stats["total_requests"] == 4


def test_notes_admin_only(sim: RunningSimulator) -> None:
    assert get(sim.primary, "/crm/v6/Notes", token(sim.primary), {"fields": "Note_Title"}).status_code == 200
    other = {**sim.primary, **sim.control.add_client(["ZohoCRM.modules.ALL"], admin=False)}
    resp = get(other, "/crm/v6/Notes", token(other), {"fields": "Note_Title"})
    assert resp.status_code == 403
    assert resp.json() == {
        "code": "NOT_SUPPORTED",
        "details": {},
        "message": "This API is supported only for admin users.",
        "status": "error",
    }


def test_page_token_cap() -> None:
    from zoho_dagster.simulator import run_simulator

    with run_simulator(records=600, page_token_cap=500) as small:
        org = small.primary
        tok = token(org)
        params = {"fields": "Last_Name", "per_page": 200, **EVERY_RECORD}
        got = 0
        body = get(org, "/crm/v6/Leads", tok, params).json()
        got += body["info"]["count"]
        while body["info"]["next_page_token"]:
            resp = get(org, "/crm/v6/Leads", tok, {**params, "page_token": body["info"]["next_page_token"]})
            if resp.status_code != 200:
                break
            body = resp.json()
            got += body["info"]["count"]
        assert got == 500
        assert resp.status_code == 400
        assert error(resp)["code"] == "PAGINATION_LIMIT_EXCEEDED"

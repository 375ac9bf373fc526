"""Bulk Read (docs/zoho-crm-api.md §4)."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from typing import Any

from zoho_dagster.simulator import RunningSimulator

from .helpers import SESSION, error, get, shown_by_default, token


def _create(org: dict[str, Any], tok: str, query: dict[str, Any]) -> Any:
    return SESSION.post(
        f"{org['api_domain']}/crm/bulk/v6/read",
        json={"query": query},
        headers={"Authorization": f"Zoho-oauthtoken {tok}"},
        timeout=30,
    )


def _wait(org: dict[str, Any], tok: str, job_id: str) -> dict[str, Any]:
    states = []
    for _ in range(60):
        job = get(org, f"/crm/bulk/v6/read/{job_id}", tok).json()["data"][0]
        states.append(job["state"])
        if job["state"] == "COMPLETED":
            assert states[0] in ("ADDED", "IN PROGRESS")
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(states)


def test_bulk_read_flow(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    start, end = "2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00"
    query = {
        "module": {"api_name": "Contacts"},
        "fields": ["Last_Name", "Owner", "Modified_Time"],
        "page": 1,
        "criteria": {
            "group_operator": "and",
            "group": [
                {"field": {"api_name": "Modified_Time"}, "comparator": "between", "value": [start, end]}
            ],
        },
    }
    created = _create(org, tok, query)
    assert created.status_code == 201
    details = created.json()["data"][0]
    assert details["code"] == "ADDED_SUCCESSFULLY" and details["details"]["state"] == "ADDED"
    job_id = details["details"]["id"]
    job = _wait(org, tok, job_id)
    result = job["result"]
    assert result["per_page"] == 200000 and result["more_records"] is False
    assert result["download_url"] == f"/crm/bulk/v6/read/{job_id}/result"
    zipped = SESSION.get(
        org["api_domain"] + result["download_url"],
        headers={"Authorization": f"Zoho-oauthtoken {tok}"},
        timeout=60,
    )
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as zf:
        assert zf.namelist() == [f"{job_id}.csv"]
        rows = list(csv.DictReader(io.StringIO(zf.read(f"{job_id}.csv").decode())))
    assert rows[0].keys() == {"id", "Last_Name", "Owner", "Modified_Time"}
    # Records awaiting approval are left out (strict reading, docs/zoho-crm-api.md §10; test_fidelity.py).
    truth = shown_by_default(sim.control.truth("Contacts")["data"])
    assert {r["id"] for r in rows} == {r["id"] for r in truth} and result["count"] == len(truth)


def test_bulk_criteria_greater_equal(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    rid = sim.control.create("Deals", {"Deal_Name": "Fresh", "Modified_Time": "2099-05-01T00:00:00+00:00"})
    query = {
        "module": {"api_name": "Deals"},
        "fields": ["Deal_Name"],
        "criteria": {
            "field": {"api_name": "Modified_Time"},
            "comparator": "greater_equal",
            "value": "2099-05-01T00:00:00+00:00",
        },
    }
    job = _wait(org, tok, _create(org, tok, query).json()["data"][0]["details"]["id"])
    assert job["result"]["count"] == 1
    data = get(
        org,
        job["result"]["download_url"].removeprefix("/crm/bulk/v6/read/").join(["/crm/bulk/v6/read/", ""]),
        tok,
    )
    with zipfile.ZipFile(io.BytesIO(data.content)) as zf:
        text = zf.read(zf.namelist()[0]).decode()
    assert rid in text and "Fresh" in text


def test_bulk_requires_json(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    resp = SESSION.post(
        f"{org['api_domain']}/crm/bulk/v6/read",
        data="query=x",
        headers={
            "Authorization": f"Zoho-oauthtoken {tok}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
        timeout=30,
    )
    assert resp.status_code == 415 and error(resp)["code"] == "MEDIA_TYPE_NOT_SUPPORTED"


def test_unknown_job(sim: RunningSimulator) -> None:
    resp = get(sim.primary, "/crm/bulk/v6/read/111111", token(sim.primary))
    assert resp.status_code == 404 and error(resp)["code"] == "RESOURCE_NOT_FOUND"


def test_ten_downloads_per_minute(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    job = _wait(
        org, tok, _create(org, tok, {"module": {"api_name": "Vendors"}}).json()["data"][0]["details"]["id"]
    )
    path = job["result"]["download_url"]
    codes = [get(org, path, tok).status_code for _ in range(11)]
    assert codes == [200] * 10 + [429]
    assert get(org, path, tok).status_code == 429  # blocked for a minute
    sim.control.advance_clock(61)
    assert get(org, path, token(org)).status_code == 200


def _rows(sim: RunningSimulator, query: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Run a job to completion and read its CSV (docs/zoho-crm-api.md §4.1)."""
    org, tok = sim.primary, token(sim.primary)
    created = _create(org, tok, query)
    assert created.status_code == 201, created.text
    job = _wait(org, tok, created.json()["data"][0]["details"]["id"])
    zipped = get(org, job["result"]["download_url"], tok)
    assert zipped.status_code == 200
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as zf:
        text = zf.read(f"{job['id']}.csv").decode("utf-8")
    return job, list(csv.DictReader(io.StringIO(text, newline="")))


def test_csv_cells_carry_the_records_apis_values(sim: RunningSimulator) -> None:
    """Ids for lookups and users, their parts by dot notation, JSON number text, the API's datetimes."""
    fields = [
        "Last_Name",
        "Owner",
        "Owner.first_name",
        "Owner.last_name",
        "Owner.email",
        "Account_Manager__c",
        "Referral_Account__c",
        "Referral_Account__c.Account_Name",
        "Referral_Account__c.Phone",
        "Products_Of_Interest__c",
        "Interests__c",
        "Annual_Revenue",
        "Seats__c",
        "Email_Opt_Out",
        "External_Ref__c",
        "Modified_Time",
        "Follow_Up_Date__c",
    ]
    job, rows = _rows(sim, {"module": {"api_name": "Leads"}, "fields": fields})
    assert list(rows[0]) == ["id", *fields]
    users = {u["id"]: u for u in sim.control.truth("users")["data"]}
    accounts = {a["id"]: a for a in sim.control.truth("Accounts")["data"]}
    truth = {r["id"]: r for r in shown_by_default(sim.control.truth("Leads")["data"])}
    assert len(rows) == job["result"]["count"] == len(truth)
    for row in rows:
        lead = truth[row["id"]]
        assert row["Last_Name"] == lead["Last_Name"]
        assert row["Owner"] == lead["Owner"]["id"]
        owner = users[row["Owner"]]
        assert (
            f"{row['Owner.first_name']} {row['Owner.last_name']}"
            == owner["full_name"]
            == lead["Owner"]["name"]
        )
        assert row["Owner.email"] == owner["email"] == lead["Owner"]["email"]
        assert row["Account_Manager__c"] == ((lead["Account_Manager__c"] or {}).get("id") or "")
        referral = lead["Referral_Account__c"]
        if referral is None:
            assert row["Referral_Account__c"] == row["Referral_Account__c.Account_Name"] == ""
        else:
            assert row["Referral_Account__c"] == referral["id"]
            assert row["Referral_Account__c.Account_Name"] == referral["name"]
            parent = accounts.get(referral["id"]) or {}  # a deleted account has no parts left
            assert row["Referral_Account__c.Phone"] == (parent.get("Phone") or "")
        assert row["Products_Of_Interest__c"] == ";".join(lead["Products_Of_Interest__c"])
        assert lead["Interests__c"] is not None  # an empty multi-select is [], as an empty cell reads back
        assert row["Interests__c"] == ";".join(lead["Interests__c"])
        for name in ("Annual_Revenue", "Seats__c"):
            assert row[name] == ("" if lead[name] is None else json.dumps(lead[name]))
        assert row["Email_Opt_Out"] == json.dumps(lead["Email_Opt_Out"])
        assert row["External_Ref__c"] == lead["External_Ref__c"]
        assert row["Modified_Time"] == lead["Modified_Time"]  # the same string, offset included
        assert row["Follow_Up_Date__c"] == lead["Follow_Up_Date__c"]


def test_lookup_names_are_their_targets_names(sim: RunningSimulator) -> None:
    contacts = {c["id"]: c for c in sim.control.truth("Contacts")["data"]}
    deals = sim.control.truth("Deals")["data"]
    named = [d["Contact_Name"] for d in deals if d["Contact_Name"] and d["Contact_Name"]["id"] in contacts]
    assert named
    for ref in named:
        assert ref["name"] == contacts[ref["id"]]["Full_Name"] != ""


def test_fields_bulk_cannot_export_are_refused_at_creation(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    for name in (
        "Nope",
        "Last_Name.Last_Name",
        "Owner.full_name",
        "Referral_Account__c.Nope",
        "Referral_Account__c.Parent.Account_Name",
    ):
        resp = _create(org, tok, {"module": {"api_name": "Leads"}, "fields": ["Last_Name", name]})
        assert resp.status_code == 400, name
        assert error(resp) == {
            "code": "FIELD_NOT_AVAILABLE",
            "details": {"api_name": name},
            "message": "The given field is not available",
            "status": "error",
        }


def test_criteria_take_no_milliseconds_and_page_is_positive(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    between = {
        "field": {"api_name": "Modified_Time"},
        "comparator": "between",
        "value": ["2020-01-01T00:00:00.500+00:00", "2030-01-01T00:00:00+00:00"],
    }
    resp = _create(org, tok, {"module": {"api_name": "Leads"}, "criteria": between})
    assert resp.status_code == 400 and error(resp)["code"] == "INVALID_CRITERIA"
    for page in (0, "2", True):
        resp = _create(org, tok, {"module": {"api_name": "Leads"}, "page": page})
        assert resp.status_code == 400 and error(resp)["code"] == "INVALID_DATA", page


def test_notes_are_not_available(sim: RunningSimulator) -> None:
    resp = _create(sim.primary, token(sim.primary), {"module": {"api_name": "Notes"}})
    assert resp.status_code == 400 and error(resp)["code"] == "MODULE_NOT_AVAILABLE"


def test_a_result_expires_a_day_after_completion(sim: RunningSimulator) -> None:
    org, tok = sim.primary, token(sim.primary)
    job = _wait(
        org, tok, _create(org, tok, {"module": {"api_name": "Vendors"}}).json()["data"][0]["details"]["id"]
    )
    sim.control.advance_clock(86_400 + 5)
    tok = token(org)
    assert get(org, f"/crm/bulk/v6/read/{job['id']}", tok).json()["data"][0]["state"] == "COMPLETED"
    gone = get(org, job["result"]["download_url"], tok)
    assert gone.status_code == 404 and error(gone)["code"] == "RESOURCE_NOT_FOUND"


def test_a_tag_cell_holds_the_names_joined_by_commas_in_the_records_order(sim: RunningSimulator) -> None:
    """``Tag`` (docs/zoho-crm-api.md §4.1): names only, ``,`` between them, empty when untagged; the ids come
    from ``/settings/tags``, where each name is one tag of the module."""
    org, tok = sim.primary, token(sim.primary)
    listed = get(org, "/crm/v6/settings/tags", tok, {"module": "Contacts"}).json()["tags"]
    reordered = [{"name": t["name"], "id": t["id"]} for t in reversed(listed)]
    contact = shown_by_default(sim.control.truth("Contacts")["data"])[1]["id"]
    sim.control.update("Contacts", contact, {"Tag": reordered})
    job, rows = _rows(sim, {"module": {"api_name": "Contacts"}, "fields": ["Last_Name", "Tag"]})
    assert list(rows[0]) == ["id", "Last_Name", "Tag"]
    truth = {r["id"]: r for r in shown_by_default(sim.control.truth("Contacts")["data"])}
    assert len(rows) == job["result"]["count"] == len(truth)
    for row in rows:
        assert row["Tag"] == ",".join(tag["name"] for tag in truth[row["id"]]["Tag"])
    cells = {row["id"]: row["Tag"] for row in rows}
    assert cells[contact] == ",".join(t["name"] for t in reordered)
    assert "" in cells.values() and any("," in cell for cell in cells.values())
    for name in ("Tag.name", "Tag.id"):  # Tag is no lookup: no dot notation on it
        resp = _create(org, tok, {"module": {"api_name": "Contacts"}, "fields": ["Last_Name", name]})
        assert resp.status_code == 400 and error(resp)["code"] == "FIELD_NOT_AVAILABLE"

"""Bulk Read (docs/zoho-crm-api.md §4)."""

from __future__ import annotations

import csv
import io
import time
import zipfile
from typing import Any

from zoho_dagster.simulator import RunningSimulator

from .helpers import SESSION, error, get, token


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
    truth = sim.control.truth("Contacts")["data"]
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

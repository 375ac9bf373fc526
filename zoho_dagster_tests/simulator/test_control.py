"""Control endpoints and `SimulatorControl` (docs/contracts.md §1)."""

from __future__ import annotations

import json
import subprocess
import sys

from zoho_dagster.simulator import RunningSimulator

from .helpers import get, token


def test_create_update_delete_truth(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    rid = sim.control.create(
        "Leads", {"Last_Name": "Created", "First_Name": "Ada", "Email": "ada@example.com"}
    )
    row = next(r for r in sim.control.truth("Leads")["data"] if r["id"] == rid)
    assert row["Full_Name"] == "Ada Created" and row["Owner"]["id"]
    api = get(sim.primary, "/crm/v6/Leads", tok, {"fields": "Last_Name", "ids": rid}).json()["data"]
    assert [{k: v for k, v in r.items() if not k.startswith("$")} for r in api] == [
        {"Last_Name": "Created", "id": rid}
    ]
    assert api[0]["$converted"] is False and api[0]["$approved"] is True  # created records are visible
    sim.control.update("Leads", rid, {"Last_Name": "Renamed", "Modified_Time": "2030-02-03T04:05:06+00:00"})
    row = next(r for r in sim.control.truth("Leads")["data"] if r["id"] == rid)
    assert row["Last_Name"] == "Renamed"
    assert row["Modified_Time"].startswith("2030-02-03T09:35:06")  # owner is in +05:30
    sim.control.delete("Leads", rid, permanent=True)
    truth = sim.control.truth("Leads")
    assert rid not in {r["id"] for r in truth["data"]}
    assert {"id": rid, "type": "permanent"}.items() <= next(
        d for d in truth["deleted"] if d["id"] == rid
    ).items()


def test_truth_equals_api_rendering(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    truth = {r["id"]: r for r in sim.control.truth("Accounts")["data"]}
    # `fields` names no `$` key but `$approval_state` (docs/zoho-crm-api.md §2.1); rows carry them all anyway.
    fields = [k for k in next(iter(truth.values())) if k != "id" and not k.startswith("$")][:50]
    page = get(sim.primary, "/crm/v6/Accounts", tok, {"fields": ",".join(fields)}).json()["data"]
    for row in page:
        assert row == {k: truth[row["id"]][k] for k in row}


def test_truth_of_users_and_modules_matches_the_api(sim: RunningSimulator) -> None:
    """The two full-refresh streams have a truth too, so the demo can compare every table."""
    org, tok = sim.primary, token(sim.primary)
    users = get(org, "/crm/v6/users", tok, {"type": "AllUsers"}).json()["users"]
    assert {u["id"] for u in sim.control.truth("users")["data"]} == {u["id"] for u in users}
    modules = get(org, "/crm/v6/settings/modules", tok).json()["modules"]
    assert sim.control.truth("modules")["data"] == modules


def test_reset_restores_seeded_state(sim: RunningSimulator) -> None:
    before = sim.control.truth("Vendors")
    sim.control.create("Vendors", {"Vendor_Name": "X"})
    sim.control.set_faults(rate=1.0, kinds=["500"])
    sim.control.reset()
    assert sim.control.truth("Vendors") == before
    assert (
        get(sim.primary, "/crm/v6/Vendors", token(sim.primary), {"fields": "Vendor_Name"}).status_code == 200
    )
    assert sim.control.stats()["total_requests"] == 2  # the token call and the API call


def test_other_org_and_add_client(sim: RunningSimulator) -> None:
    eu = sim.connection["orgs"][1]
    rid = sim.control.create("Contacts", {"Last_Name": "Euro"}, org=eu["org_id"])
    assert rid in {r["id"] for r in sim.control.truth("Contacts", org=eu["org_id"])["data"]}
    creds = sim.control.add_client(["ZohoCRM.modules.ALL"], org=eu["org_id"])
    assert creds["soid"] == eu["soid"] and set(creds) == {
        "client_id",
        "client_secret",
        "refresh_token",
        "soid",
    }


def test_cli_prints_and_writes_connection(tmp_path: object) -> None:
    path = f"{tmp_path}/conn.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zoho_dagster.simulator",
            "--port",
            "0",
            "--records",
            "20",
            "--connection-file",
            path,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed = json.loads(proc.stdout.readline())
        with open(path, encoding="utf-8") as fh:
            assert json.load(fh) == printed
        assert printed["orgs"][0]["region"] == "US"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_scales_to_a_million_records() -> None:
    from zoho_dagster.simulator import run_simulator

    with run_simulator(records=1_000_000) as big:
        org = big.primary
        tok = token(org)
        # The count covers what the list API shows by default (strict reading, docs/zoho-crm-api.md §10):
        # about (1 - 0.30) x (1 - 0.05) of the Leads; counted without walking the module.
        assert 640_000 < get(org, "/crm/v6/Leads/actions/count", tok).json()["count"] < 690_000
        resp = get(
            org,
            "/crm/v6/Leads",
            tok,
            {"fields": "Last_Name,Modified_Time", "sort_by": "Modified_Time", "sort_order": "asc"},
            {"If-Modified-Since": "2000-01-01T00:00:00+00:00"},
        )
        assert resp.status_code == 200 and resp.json()["info"]["count"] == 200


def test_warm_keeps_every_generated_record_and_changes_no_answer(sim: RunningSimulator) -> None:
    """The benchmarks warm Leads before timing: what a client reads must be the same before and after."""
    org, tok = sim.primary, token(sim.primary)
    created = sim.control.create("Leads", {"Last_Name": "Edited in", "Email": "edit@example.com"})
    generated = [r["id"] for r in sim.control.truth("Leads")["data"] if r["id"] != created]
    sim.control.delete("Leads", generated[0])
    params = {"fields": "Last_Name,Email,Owner,Modified_Time,Lead_Status", "per_page": 200}

    def pages() -> list[object]:
        return [
            get(org, "/crm/v6/Leads", tok, {**params, "page": page}).json()["data"] for page in (1, 2, 3)
        ]

    before = pages()
    assert sim.control.warm("Leads") == len(generated) - 1  # neither the created nor the deleted record
    assert pages() == before

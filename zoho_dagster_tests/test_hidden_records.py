"""Converted leads and records awaiting approval reach the table on every read route.

Zoho's list API leaves both out unless asked (docs/zoho-crm-api.md §2.1); whether COQL, Bulk Read, the count
API and a single-record read include them is UNCONFIRMED (§10). A third of the leads here are converted and
some await approval; each route (records API passes only, with COQL passes, with Bulk Read) syncs a backfill
and then an incremental run, under the simulator's strict reading of those points (they are left out) and its
permissive one. Expected values come from the simulator's truth, never from the client.
"""

from datetime import timedelta
from typing import Any

import pytest

from zoho_dagster.simulator import run_simulator
from zoho_dagster_tests.client.helpers import is_awaiting_approval, is_converted
from zoho_dagster_tests.postgres.sync_helpers import (
    anchor_days_ago,
    assert_rows_match_truth,
    assets_by_name,
    materialize,
    midnight,
    table,
    today,
    truth_in,
    use_simulator,
)

ROUTES: dict[str, dict[str, Any]] = {
    "records_api": {"coql_passes": False, "bulk_threshold": 0},
    "coql_passes": {"coql_passes": True, "bulk_threshold": 0},
    # Far below the window: the strict count sees only the leads shown by default (docs/zoho-crm-api.md §10).
    "bulk_read": {"coql_passes": True, "bulk_threshold": 100},
}
READINGS = ("coql_includes_hidden", "bulk_includes_hidden", "count_includes_hidden")


@pytest.fixture(scope="module")
def org() -> Any:
    with run_simulator(records=800, seed=23) as simulator:
        yield simulator


def _hidden(records: dict[str, dict[str, Any]]) -> tuple[set[str], set[str]]:
    converted = {rid for rid, r in records.items() if is_converted(r)}
    awaiting = {rid for rid, r in records.items() if is_awaiting_approval(r)}
    return converted, awaiting


def _assert_table_is_truth(org: Any, database_url: str, anchor: Any) -> dict[str, dict[str, Any]]:
    live, deleted = truth_in(
        org.control.truth("Leads"), midnight(anchor), midnight(today() + timedelta(days=1))
    )
    rows = table(database_url, "leads")
    assert {i for i, r in rows.items() if r["_zoho_deleted_at"] is None} == set(live)
    assert {i for i, r in rows.items() if r["_zoho_deleted_at"] is not None} == deleted
    converted, awaiting = _hidden(live)
    assert {i for i, r in rows.items() if r["converted"] is True} == converted
    assert {i for i, r in rows.items() if r["approved"] is False} == awaiting
    assert {i for i, r in rows.items() if r["converted"] is False} == set(live) - converted
    assert_rows_match_truth(database_url, "leads", "Leads", live)
    return live


@pytest.mark.parametrize("permissive", [False, True], ids=["strict", "permissive"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_every_lead_arrives_on_every_route(
    org: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, route: str, permissive: bool
) -> None:
    org.control.reset()
    org.control.set_visibility(converted_share=1 / 3, awaiting_approval_share=0.08)
    org.control.set_readings(**dict.fromkeys(READINGS, permissive), single_record_includes_hidden=permissive)
    use_simulator(monkeypatch, org, database_url)
    anchor = anchor_days_ago(400)
    leads = assets_by_name(anchor)["leads"]

    org.control.reset_stats()
    materialize([leads], anchor, today(), **ROUTES[route])
    by_endpoint = org.control.stats()["by_endpoint"]
    live = _assert_table_is_truth(org, database_url, anchor)
    converted, awaiting = _hidden(live)
    assert len(converted) >= len(live) // 4 and len(awaiting) >= 20  # the data exercises both filters
    bulk_jobs = by_endpoint.get("POST /crm/bulk/v6/read", 0)
    coql_calls = by_endpoint.get("POST /crm/v6/coql", 0)
    assert (bulk_jobs > 0) == (route == "bulk_read")
    assert (coql_calls > 0) == (route != "records_api")

    # The incremental run: hidden records edited, one lead created; today's partition picks them up.
    edited = sorted(converted)[:3] + sorted(awaiting)[:3]
    for number, record_id in enumerate(edited):
        org.control.update("Leads", record_id, {"Last_Name": f"Edited {number}"})
    created = org.control.create("Leads", {"Last_Name": "Created today", "Company": "Hidden Records Ltd"})
    materialize([leads], today(), **ROUTES[route])
    live = _assert_table_is_truth(org, database_url, anchor)
    assert created in live and {live[rid]["Last_Name"] for rid in edited} == {
        f"Edited {n}" for n in range(len(edited))
    }


def test_child_rows_of_hidden_parents_arrive(
    org: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Line items and links of quotes and deals awaiting approval: under the strict reading COQL leaves out
    the rows of such parents (and a single-record read needs converted/approved=both); they must come by
    another route. (The permissive reading is the easy case: COQL returns them.)"""
    permissive = False
    import sqlalchemy as sa

    from zoho_dagster.postgres.engine import make_engine

    org.control.reset()
    org.control.set_visibility(awaiting_approval_share=0.25)
    org.control.set_readings(**dict.fromkeys(READINGS, permissive), single_record_includes_hidden=permissive)
    use_simulator(monkeypatch, org, database_url)
    anchor = anchor_days_ago(400)
    assets = assets_by_name(anchor)
    materialize([assets["quotes"], assets["deals"]], anchor, today())
    since, until = midnight(anchor), midnight(today() + timedelta(days=1))
    engine = make_engine(database_url)
    checked = 0
    for stream, module in (("quotes", "Quotes"), ("deals", "Deals")):
        truth = org.control.truth(module)
        live, _ = truth_in(truth, since, until)
        hidden = {rid for rid, r in live.items() if is_awaiting_approval(r)}
        assert hidden
        for field, rows in (truth.get("children") or {}).items():
            want = {(str(r["id"]), str(r["_parent_id"])) for r in rows if str(r["_parent_id"]) in live}
            child_table = sa.table(
                f"{stream}__{field.lower()}", sa.column("id"), sa.column("_parent_id"), schema="zoho_crm"
            )
            with engine.connect() as conn:
                got = {
                    (str(i), str(p))
                    for i, p in conn.execute(sa.select(child_table.c.id, child_table.c._parent_id))
                }
            assert got == want, (stream, field)
            checked += sum(1 for _, parent in want if parent in hidden)
    assert checked > 0  # rows of hidden parents were among those compared

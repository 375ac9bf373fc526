"""Reading windows of records: complete, exact, bounded by [start, end), whatever the field count."""

import logging
from datetime import timedelta
from typing import Any

import pytest

from zoho_dagster.client.records import field_passes
from zoho_dagster_tests.client.conftest import ClientFactory
from zoho_dagster_tests.client.helpers import (
    WIDE_END,
    WIDE_START,
    collect,
    field_names,
    truth_window,
    utc,
)
from zoho_dagster_tests.simulator.helpers import RECORD_MODULES


def test_leads_with_more_than_fifty_fields_come_back_whole(
    simulator: Any, make_client: ClientFactory
) -> None:
    client = make_client()
    metadata = client.list_fields("Leads")
    fields = field_names(metadata)
    assert len(fields) > 50  # the simulator's Leads are wide (docs/design.md §5)
    got = collect(client.iter_records("Leads", WIDE_START, WIDE_END, fields, metadata), fields)
    expected = truth_window(simulator.control.truth("Leads"), fields, WIDE_START, WIDE_END, whole_text=True)
    assert len(got) == len(expected) > 2000
    assert got == expected
    # Rich text past the list's 500 characters came whole, from single-record reads (client/full_text.py).
    assert any(len(record["Rich_Description__c"] or "") > 500 for record in got.values())


def test_window_bounds_are_start_inclusive_end_exclusive(simulator: Any, make_client: ClientFactory) -> None:
    client = make_client()
    truth = simulator.control.truth("Contacts")
    times = sorted(utc(record["Modified_Time"]) for record in truth["data"])
    start, end = times[len(times) // 4], times[len(times) // 2]  # both are real records' Modified_Time
    fields = ["Last_Name", "Email", "Modified_Time"]
    got = collect(client.iter_records("Contacts", start, end, fields), fields)
    expected = truth_window(truth, fields, start, end)
    assert got == expected
    assert any(utc(r["Modified_Time"]) == start for r in got.values())
    assert all(utc(r["Modified_Time"]) < end for r in got.values())


def test_every_record_module_reads_completely(simulator: Any, make_client: ClientFactory) -> None:
    client = make_client(requests_per_second=500.0)
    for module in (m for m in RECORD_MODULES if m not in ("Leads", "Contacts")):
        fields = field_names(client.list_fields(module))
        got = collect(client.iter_records(module, WIDE_START, WIDE_END, fields), fields)
        assert got == truth_window(
            simulator.control.truth(
                module,
            ),
            fields,
            WIDE_START,
            WIDE_END,
        ), module


def test_empty_window_is_no_rows_not_an_error(simulator: Any, make_client: ClientFactory) -> None:
    client = make_client()
    pages = list(client.iter_records("Leads", WIDE_END, WIDE_END + timedelta(days=1), ["Last_Name"]))
    assert pages == []
    assert client.stats.calls == 1  # one call answered 304/204


def test_pages_are_lazy(simulator: Any, make_client: ClientFactory) -> None:
    client = make_client()
    fields = field_names(client.list_fields("Leads"))
    before = simulator.control.stats()["by_endpoint"].get("GET /crm/v6/Leads", 0)
    pages = client.iter_records("Leads", WIDE_START, WIDE_END, fields)
    first = next(iter(pages))
    after = simulator.control.stats()["by_endpoint"].get("GET /crm/v6/Leads", 0)
    assert 0 < len(first) <= 200
    assert after - before == len(field_passes(fields))  # one page per pass, not the module


def test_record_changed_between_passes_is_emitted_with_newest_values(
    simulator: Any, make_client: ClientFactory
) -> None:
    """A record modified after pass 1 read it (pushed past ``end``) is still emitted, whole and newest."""
    client = make_client(max_concurrency=1)  # passes run in order: pass 1's page, then pass 2's
    fields = field_names(client.list_fields("Leads"))
    truth = simulator.control.truth("Leads")
    ordered = sorted(truth["data"], key=lambda r: (utc(r["Modified_Time"]), r["id"]))
    end = utc(ordered[150]["Modified_Time"])
    victim = ordered[10]
    newest = (end + timedelta(days=3)).isoformat()

    from zoho_dagster.client.records import PassReader

    original = PassReader.next_page
    calls = {"n": 0}

    def next_page_then_modify(reader: PassReader) -> list[dict[str, Any]]:
        page = original(reader)
        calls["n"] += 1
        if calls["n"] == 1:  # after pass 1's first page, before pass 2's
            simulator.control.update("Leads", victim["id"], {"Last_Name": "Changed", "Modified_Time": newest})
        return page

    PassReader.next_page = next_page_then_modify  # type: ignore[method-assign]
    try:
        got = collect(client.iter_records("Leads", WIDE_START, end, fields), fields)
    finally:
        PassReader.next_page = original  # type: ignore[method-assign]
    after = simulator.control.truth("Leads")
    expected = truth_window(truth, fields, WIDE_START, end)
    expected[victim["id"]] = {
        k: v for k, v in truth_window(after, fields, WIDE_START, WIDE_END).items() if k == victim["id"]
    }[victim["id"]]
    assert got[victim["id"]]["Last_Name"] == "Changed"
    assert got == expected


def test_window_past_the_page_token_cap_is_split_in_time(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from zoho_dagster.simulator import run_simulator
    from zoho_dagster_tests.client.conftest import org_client

    caplog.set_level(logging.INFO, logger="zoho_dagster")
    with run_simulator(records=1200, page_token_cap=500) as sim:
        client = org_client(sim.primary, database_url)
        fields = ["Last_Name", "Email", "Modified_Time"]
        got = collect(client.iter_records("Leads", WIDE_START, WIDE_END, fields), fields)
        expected = truth_window(sim.control.truth("Leads"), fields, WIDE_START, WIDE_END)
        assert len(expected) > 1000
        assert got == expected
        assert "PAGINATION_LIMIT_EXCEEDED" in caplog.text  # the cap was really hit, and survived

"""A big window goes to Bulk Read by itself, and gives the same records as the records API.

The equivalence of single fields is tested in test_bulk_read.py; here the client decides: a window whose count
passes the threshold is read with Bulk Read jobs (the simulator's statistics show the jobs), one below it is
not, and the records are those of the simulator's truth either way.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from zoho_dagster.client import ClientConfig, Credentials, ZohoClient
from zoho_dagster.client.policy import FAST_TEST_POLICY
from zoho_dagster_tests.client.helpers import (
    WIDE_END,
    WIDE_START,
    is_awaiting_approval,
    is_converted,
    truth_window,
)

RECORDS = 4000


@pytest.fixture(scope="module")
def bulk_simulator() -> Iterator[Any]:
    from zoho_dagster.simulator import run_simulator

    with run_simulator(records=RECORDS, seed=11) as simulator:
        yield simulator


def _client(org: dict[str, Any], bulk_threshold: int) -> ZohoClient:
    credentials = Credentials(
        client_id=org["client_id"],
        client_secret=org["client_secret"],
        accounts_url=org["accounts_url"],
        region=org["region"],
        soid=org["soid"],
    )
    return ZohoClient(
        ClientConfig(
            credentials=credentials,
            api_domain=org["api_domain"],
            max_concurrency=10,
            bulk_threshold=bulk_threshold,
            policy=FAST_TEST_POLICY,
        )
    )


def _read(client: ZohoClient, module: str, fields: list[str]) -> dict[str, Any]:
    """The window's records; with the fields metadata, as the assets read (rich text whole, COQL passes)."""
    got: dict[str, Any] = {}
    for page in client.iter_records(module, WIDE_START, WIDE_END, fields, client.list_fields(module)):
        for record in page:
            got[record["id"]] = {key: record.get(key) for key in (*fields, "id")}
    return got


@pytest.mark.parametrize("module", ["Leads", "Deals"])
def test_a_window_past_the_threshold_is_read_with_bulk_read(bulk_simulator: Any, module: str) -> None:
    from zoho_dagster.client import bulk_exportable, listable_fields

    client = _client(bulk_simulator.primary, bulk_threshold=1000)
    metadata = listable_fields(client.list_fields(module))
    _, refused = bulk_exportable(metadata)
    if refused:  # none in the simulator's catalog; another route would read them (test_bulk_join.py)
        metadata = [meta for meta in metadata if meta["api_name"] not in refused]
    names = [str(meta["api_name"]) for meta in metadata]
    bulk_simulator.control.reset_stats()
    got = _read(client, module, names)
    truth = bulk_simulator.control.truth(module)
    expected = truth_window(truth, names, WIDE_START, WIDE_END, whole_text=True)
    assert got == expected
    by_endpoint = bulk_simulator.control.stats()["by_endpoint"]
    assert by_endpoint.get("POST /crm/bulk/v6/read", 0) >= 1
    record_calls = by_endpoint.get(f"GET /crm/v6/{module}", 0)
    # The first page per pass and at most one more before the cut; then the records a job may leave out,
    # read with the records API (client/bulk_join.py): each hidden set's pages per pass, plus a page per
    # pass for each slice it is split into (at most 10).
    converted = sum(1 for record in truth["data"] if is_converted(record))
    awaiting = sum(1 for record in truth["data"] if is_awaiting_approval(record))
    passes = 2
    hidden_pages = sum(max(1, -(-n // 200)) + 10 for n in (converted, awaiting))
    assert record_calls <= 2 * passes + passes * hidden_pages


def test_below_the_threshold_no_count_and_no_job(bulk_simulator: Any) -> None:
    client = _client(bulk_simulator.primary, bulk_threshold=1_000_000)
    bulk_simulator.control.reset_stats()
    got = _read(client, "Leads", ["Last_Name", "Modified_Time"])
    assert got == truth_window(
        bulk_simulator.control.truth("Leads"), ["Last_Name", "Modified_Time"], WIDE_START, WIDE_END
    )
    by_endpoint = bulk_simulator.control.stats()["by_endpoint"]
    assert "POST /crm/bulk/v6/read" not in by_endpoint
    assert "GET /crm/v6/Leads/actions/count" not in by_endpoint


def test_notes_never_go_to_bulk_read(bulk_simulator: Any) -> None:
    client = _client(bulk_simulator.primary, bulk_threshold=10)
    bulk_simulator.control.reset_stats()
    got = _read(client, "Notes", ["Note_Title", "Modified_Time"])
    assert got == truth_window(
        bulk_simulator.control.truth("Notes"), ["Note_Title", "Modified_Time"], WIDE_START, WIDE_END
    )
    assert "POST /crm/bulk/v6/read" not in bulk_simulator.control.stats()["by_endpoint"]

"""What a window costs: exactly one call per page per field pass, counted alike by client and simulator."""

import math
from collections.abc import Iterator
from typing import Any

import pytest

from zoho_dagster_tests.client.conftest import org_client
from zoho_dagster_tests.client.helpers import WIDE_END, WIDE_START, field_names, truth_window

RECORDS = 5000


@pytest.fixture(scope="module")
def big_simulator() -> Iterator[Any]:
    from zoho_dagster.simulator import run_simulator

    with run_simulator(records=RECORDS) as simulator:
        yield simulator


def test_a_5000_record_window_costs_pages_times_passes(big_simulator: Any, database_url: str) -> None:
    client = org_client(big_simulator.primary, database_url, requests_per_second=1000.0)
    fields = field_names(client.list_fields("Leads"))
    truth = truth_window(big_simulator.control.truth("Leads"), fields, WIDE_START, WIDE_END)
    # Zoho: ≤200 records per page, ≤50 fields per call, every pass carrying Modified_Time
    # (docs/zoho-crm-api.md §2.1).
    passes = math.ceil((len(fields) - 1) / 49)
    assert passes == math.ceil(len(fields) / 50) == 2
    big_simulator.control.reset_stats()
    client.stats.calls = client.stats.credits = 0
    read = sum(len(page) for page in client.iter_records("Leads", WIDE_START, WIDE_END, fields))
    stats = big_simulator.control.stats()
    assert read == len(truth) >= 4800
    expected_calls = math.ceil(len(truth) / 200) * passes
    assert stats["by_endpoint"]["GET /crm/v6/Leads"] == expected_calls
    assert client.stats.calls == expected_calls
    assert client.stats.credits == stats["total_credits"] == expected_calls

"""Concurrent time slices and the edition's manners, against the simulator over real sockets.

Expected records come from the simulator's truth; call counts from the simulator's own statistics.
"""

import math
from collections.abc import Iterator
from typing import Any

import pytest

from zoho_dagster.client import ZohoClient
from zoho_dagster.client.client import edition_concurrency
from zoho_dagster_tests.client.conftest import org_client
from zoho_dagster_tests.client.helpers import WIDE_END, WIDE_START, field_names, truth_window

RECORDS = 6000


@pytest.fixture(scope="module")
def wide_simulator() -> Iterator[Any]:
    from zoho_dagster.simulator import run_simulator

    with run_simulator(records=RECORDS, seed=3) as simulator:
        yield simulator


def _read_once(client: ZohoClient, module: str, fields: list[str], start: Any, end: Any) -> dict[str, Any]:
    """Every page's records by id, failing on any id seen twice (no record changes during these reads)."""
    seen: dict[str, Any] = {}
    for page in client.iter_records(module, start, end, fields):
        for record in page:
            assert record["id"] not in seen, f"record {record['id']} read twice"
            seen[record["id"]] = {key: record[key] for key in (*fields, "id")}
    return seen


def test_a_big_window_is_read_in_slices_exactly_once(wide_simulator: Any, database_url: str) -> None:
    client = org_client(wide_simulator.primary, database_url, max_concurrency=10)
    fields = field_names(client.list_fields("Leads"))
    truth = truth_window(wide_simulator.control.truth("Leads"), fields, WIDE_START, WIDE_END)
    wide_simulator.control.reset_stats()
    got = _read_once(client, "Leads", fields, WIDE_START, WIDE_END)
    assert got == truth
    assert client.last_window_slices >= 3  # 10 in flight, 2 passes: up to 5 slices
    calls = wide_simulator.control.stats()["by_endpoint"]["GET /crm/v6/Leads"]
    floor = math.ceil(len(truth) / 200) * math.ceil(len(fields) / 50)
    # each split may cost one page per pass beyond the floor
    assert floor <= calls <= floor + 2 * (client.last_window_slices - 1)


def test_a_one_page_window_costs_one_call_and_never_asks_for_the_edition(
    wide_simulator: Any, database_url: str
) -> None:
    client = org_client(wide_simulator.primary, database_url, max_concurrency=None)  # left to the edition
    truth = wide_simulator.control.truth("Leads")["data"]
    ordered = sorted(truth, key=lambda record: record["Modified_Time"])
    from zoho_dagster_tests.client.helpers import utc

    start, end = utc(ordered[0]["Modified_Time"]), utc(ordered[100]["Modified_Time"])
    wide_simulator.control.reset_stats()
    got = _read_once(client, "Leads", ["Last_Name", "Modified_Time"], start, end)
    assert got == truth_window({"data": truth}, ["Last_Name", "Modified_Time"], start, end)
    stats = wide_simulator.control.stats()["by_endpoint"]
    assert stats.get("GET /crm/v6/Leads") == 1
    assert "GET /crm/v6/org" not in stats


def test_slices_survive_the_page_token_cap_and_faults(database_url: str) -> None:
    from zoho_dagster.simulator import run_simulator

    with run_simulator(records=3000, page_token_cap=400, seed=5) as sim:
        client = org_client(sim.primary, database_url, max_concurrency=10)
        fields = ["Last_Name", "Email", "Modified_Time"]
        expected = truth_window(sim.control.truth("Leads"), fields, WIDE_START, WIDE_END)
        sim.control.set_faults(rate=0.05, kinds=["429", "500", "reset", "truncate"], seed=2)
        got = _read_once(client, "Leads", fields, WIDE_START, WIDE_END)
        sim.control.clear_faults()
        assert got == expected
        assert client.last_window_slices > 1


@pytest.fixture
def fresh_editions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the editions this process has learnt: each test sets its simulated org's edition anew."""
    monkeypatch.setattr("zoho_dagster.client.client._EDITION_CONCURRENCY_SEEN", {})


@pytest.mark.usefixtures("fresh_editions")
@pytest.mark.parametrize(
    ("edition", "expected"),
    [("Free", 5), ("Standard", 10), ("Professional", 15), ("Enterprise", 20), ("Ultimate", 25)],
)
def test_the_edition_decides_the_concurrency(
    simulator: Any, database_url: str, edition: str, expected: int
) -> None:
    simulator.control.set_limits(edition=edition)
    client = org_client(simulator.primary, database_url, max_concurrency=None)
    assert client.edition_concurrency() == expected
    assert client.concurrency() == expected
    simulator.control.reset_stats()
    shared = org_client(simulator.primary, database_url, max_concurrency=None)
    assert shared.edition_concurrency() == expected
    assert "GET /crm/v6/org" not in simulator.control.stats()["by_endpoint"]  # one /org call per process


def test_paid_types_seen_in_the_wild_name_their_edition() -> None:
    assert edition_concurrency({"paid_type": "zohooneenterprise"}) == 20
    assert edition_concurrency({"paid_type": None, "trial_type": "Ultimate"}) == 25
    assert edition_concurrency({}) == 5


@pytest.mark.usefixtures("fresh_editions")
def test_the_pool_share_divides_the_edition(simulator: Any, database_url: str) -> None:
    simulator.control.set_limits(edition="Enterprise")
    client = org_client(simulator.primary, database_url, max_concurrency=None, concurrency_share=3)
    assert client.concurrency() == 20 // 3
    assert client.limiter.heavy_limit == 10 // 3  # sorted reads share the org's sub-concurrency of 10


ABANDONING_SCRIPT = """
import json, sys
from zoho_dagster.client import ClientConfig, Credentials, RetryPolicy, ZohoClient
from zoho_dagster.client.client import listable_fields
from zoho_dagster_tests.client.helpers import WIDE_END, WIDE_START

org = json.loads(sys.argv[1])
client = ZohoClient(ClientConfig(
    credentials=Credentials(client_id=org["client_id"], client_secret=org["client_secret"],
                            accounts_url=org["accounts_url"], region=org["region"], soid=org["soid"]),
    api_domain=org["api_domain"], max_concurrency=10, policy=RetryPolicy()))
fields = [f["api_name"] for f in listable_fields(client.list_fields("Leads"))]
KEPT = client.iter_records("Leads", WIDE_START, WIDE_END, fields)
print(len(next(KEPT)), flush=True)  # the first page only; the reader is never closed
"""


def test_a_reader_dropped_after_one_page_lets_the_process_exit(wide_simulator: Any) -> None:
    """A consumer that stops after the first page and never closes the reader (as a traceback that keeps it
    alive does) must not keep its process from exiting: the slices wait for demand in daemon threads."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", ABANDONING_SCRIPT, json.dumps(wide_simulator.primary)],
        capture_output=True,
        text=True,
        timeout=120,  # before the fix the process never exited
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["200"]


@pytest.mark.usefixtures("fresh_editions")
def test_a_failing_org_lookup_falls_back_to_the_lowest_concurrency(
    simulator: Any, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    simulator.control.set_limits(edition="Enterprise")
    client = org_client(simulator.primary, database_url, max_concurrency=None)
    client.list_modules()  # the token is in hand: the faults below hit /org alone
    # Every attempt at /org answers 500, retries included (the policy makes 9): the optional lookup fails.
    simulator.control.set_faults(schedule=[{"at_request": n, "kind": "500"} for n in range(1, 10)])
    try:
        with caplog.at_level("WARNING", logger="zoho_dagster.client.client"):
            assert client.concurrency() == 5
    finally:
        simulator.control.clear_faults()
    warnings = [r for r in caplog.records if "/org" in r.getMessage()]
    assert len(warnings) == 1 and "lowest concurrency" in warnings[0].getMessage()
    # The sync goes on: the next read works, and a later client that can read /org gets the edition's 20.
    assert client.list_fields("Leads")
    assert org_client(simulator.primary, database_url, max_concurrency=None).edition_concurrency() == 20

"""Credits, concurrency and sub-concurrency (docs/zoho-crm-api.md §6)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from zoho_dagster.simulator import RunningSimulator, run_simulator

from .helpers import error, get, token


@pytest.fixture(scope="module")
def slow() -> Iterator[RunningSimulator]:
    with run_simulator(records=100, latency_ms=400) as running:
        yield running


def test_credits_exhausted(sim: RunningSimulator) -> None:
    sim.control.set_limits(credits_per_day=3)
    tok = token(sim.primary)
    codes = [get(sim.primary, "/crm/v6/Leads", tok, {"fields": "Last_Name"}).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    resp = get(sim.primary, "/crm/v6/Leads", tok, {"fields": "Last_Name"})
    assert resp.status_code == 429
    body = error(resp)
    assert body["code"] == "TOO_MANY_REQUESTS" and "24 hour" in body["message"]
    sim.control.advance_clock(86_401)
    assert get(sim.primary, "/crm/v6/Leads", token(sim.primary), {"fields": "Last_Name"}).status_code == 200


def test_credit_header_after_half(sim: RunningSimulator) -> None:
    sim.control.set_limits(credits_per_day=10)
    tok = token(sim.primary)
    headers = [get(sim.primary, "/crm/v6/Leads", tok, {"fields": "Last_Name"}).headers for _ in range(6)]
    assert [h.get("X-API-CREDITS-REMAINING") for h in headers] == [None, None, None, None, "5", "4"]


def test_default_limits_by_edition(sim: RunningSimulator) -> None:
    assert sim.control.set_limits(edition="Free") == {
        "edition": "Free",
        "credits_per_day": 5000,
        "concurrency": 5,
    }
    assert sim.control.set_limits(edition="Enterprise")["concurrency"] == 20


def _burst(sim: RunningSimulator, n: int, params: dict[str, str]) -> list[dict[str, str] | None]:
    tok = token(sim.primary)

    def call(_: int) -> dict[str, str] | None:
        resp = get(sim.primary, "/crm/v6/Leads", tok, params)
        return None if resp.status_code == 200 else resp.json()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(call, range(n)))


def test_concurrency_limit(slow: RunningSimulator) -> None:
    slow.control.reset()
    slow.control.set_limits(concurrency=3)
    results = _burst(slow, 6, {"fields": "Last_Name"})
    refused = [r for r in results if r is not None]
    assert len(refused) == 3
    assert all(r["code"] == "TOO_MANY_REQUESTS" and "concurrency" in r["message"] for r in refused)


def test_sub_concurrency_for_sort_by(slow: RunningSimulator) -> None:
    slow.control.reset()
    slow.control.set_limits(concurrency=25)
    results = _burst(slow, 12, {"fields": "Last_Name", "sort_by": "Modified_Time"})
    refused = [r for r in results if r is not None]
    assert len(refused) == 2
    assert all("sub-concurrency" in r["message"] for r in refused)
    plain = _burst(slow, 12, {"fields": "Last_Name"})
    assert all(r is None for r in plain)

"""Faults, limits and permissions: retried to an exact result, stopped with one clear error, never leaking."""

import logging
import threading
import time
import traceback
from typing import Any

import pytest

from zoho_dagster.client import (
    ZohoCreditsExhausted,
    ZohoPermissionError,
    ZohoTransientError,
)
from zoho_dagster.client.limiter import RateLimiter
from zoho_dagster.client.policy import RetryPolicy
from zoho_dagster_tests.client.conftest import ClientFactory, org_client
from zoho_dagster_tests.client.helpers import WIDE_END, WIDE_START, collect, field_names, truth_window

FAULT_KINDS = ["429", "500", "503", "reset", "truncate", "expire_token", "expire_page_token"]


def _secrets(org: dict[str, Any], client: Any) -> list[str]:
    values = [org["client_secret"], org["refresh_token"]]
    current = client.tokens._current
    if current is not None:
        values.append(current.value)
    return values


def test_window_with_five_percent_faults_equals_truth_and_leaks_nothing(
    simulator: Any, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    client = make_client()
    fields = field_names(client.list_fields("Leads"))
    simulator.control.set_faults(rate=0.05, kinds=FAULT_KINDS, seed=7)
    got = collect(client.iter_records("Leads", WIDE_START, WIDE_END, fields), fields)
    faults = simulator.control._call("GET", "faults")
    simulator.control.clear_faults()
    assert faults["injected"] >= 1
    assert got == truth_window(simulator.control.truth("Leads"), fields, WIDE_START, WIDE_END)
    for secret in _secrets(simulator.primary, client):
        assert secret not in caplog.text
    assert "Retrying GET" in caplog.text  # the faults were met and retried


def test_exhausted_retries_raise_a_text_without_secrets(
    simulator: Any, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    policy = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_max=0.02, token_throttle_wait=0.01)
    client = org_client(simulator.primary, database_url, policy=policy)
    client.list_modules()
    simulator.control.set_faults(rate=1.0, kinds=["reset", "truncate", "500"])
    with pytest.raises(ZohoTransientError) as caught:
        client.list_fields("Leads")
    simulator.control.clear_faults()
    text = "".join(traceback.format_exception(caught.value)) + repr(client) + caplog.text
    for secret in _secrets(simulator.primary, client):
        assert secret not in text


def test_token_call_failures_do_not_leak_the_secret(simulator: Any, database_url: str) -> None:
    policy = RetryPolicy(max_retries=1, backoff_base=0.01, backoff_max=0.02)
    client = org_client(simulator.primary, database_url, policy=policy, accounts_url="http://127.0.0.1:9/x")
    with pytest.raises(Exception) as caught:
        client.list_modules()
    text = "".join(traceback.format_exception(caught.value))
    assert simulator.primary["client_secret"] not in text
    assert "ZOHO_CRM_ACCOUNTS_URL" in str(caught.value)


def test_exhausted_credits_stop_with_one_error_and_few_calls(
    simulator: Any, make_client: ClientFactory
) -> None:
    client = make_client()
    fields = field_names(client.list_fields("Leads"))
    simulator.control.set_limits(credits_per_day=4)
    simulator.control.reset_stats()
    with pytest.raises(ZohoCreditsExhausted) as caught:
        for _ in client.iter_records("Leads", WIDE_START, WIDE_END, fields):
            pass
    assert "24-hour" in str(caught.value)
    assert simulator.control.stats()["total_requests"] <= 6


def test_missing_scope_is_named(simulator: Any, database_url: str) -> None:
    extra = simulator.control.add_client(scopes=["ZohoCRM.settings.ALL"])
    org = {**simulator.primary, **extra}
    client = org_client(org, database_url, grant="refresh_token")
    with pytest.raises(ZohoPermissionError) as caught:
        list(client.iter_records("Leads", WIDE_START, WIDE_END, ["Last_Name"]))
    assert caught.value.missing == "ZohoCRM.modules.leads.READ"
    assert "ZohoCRM.modules.leads.READ" in str(caught.value)


def test_notes_need_an_admin(simulator: Any, database_url: str) -> None:
    extra = simulator.control.add_client(scopes=["ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL"], admin=False)
    client = org_client({**simulator.primary, **extra}, database_url, grant="refresh_token")
    with pytest.raises(ZohoPermissionError) as caught:
        list(client.iter_records("Notes", WIDE_START, WIDE_END, ["Note_Title"]))
    assert "admin" in str(caught.value).lower()


def test_limiter_bounds_rate_and_concurrency_across_threads() -> None:
    limiter = RateLimiter(requests_per_second=50.0, max_concurrency=2)
    lock = threading.Lock()
    inflight, peak, starts = [0], [0], []

    def call() -> None:
        with limiter.slot():
            with lock:
                inflight[0] += 1
                peak[0] = max(peak[0], inflight[0])
                starts.append(time.monotonic())
            time.sleep(0.01)
            with lock:
                inflight[0] -= 1

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] <= 2
    starts.sort()
    assert starts[-1] - starts[0] >= 19 / 50 * 0.95  # 20 starts spaced 1/50 s apart

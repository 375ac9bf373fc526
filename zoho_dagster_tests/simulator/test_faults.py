"""Faults on demand: schedule, rate, and kinds; control calls are never faulted."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from zoho_dagster.simulator import RunningSimulator

from .helpers import error, get, grant, token

PARAMS = {"fields": "Last_Name"}


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("429", 429, "TOO_MANY_REQUESTS"), ("500", 500, "INTERNAL_ERROR"), ("503", 503, None)],
)
def test_scheduled_status_faults(sim: RunningSimulator, kind: str, status: int, code: str | None) -> None:
    tok = token(sim.primary)
    sim.control.set_faults(schedule=[{"at_request": 2, "kind": kind}])
    first = get(sim.primary, "/crm/v6/Leads", tok, PARAMS)
    second = get(sim.primary, "/crm/v6/Leads", tok, PARAMS)
    third = get(sim.primary, "/crm/v6/Leads", tok, PARAMS)
    assert (first.status_code, second.status_code, third.status_code) == (200, status, 200)
    if code:
        assert error(second)["code"] == code


def test_connection_reset(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    sim.control.set_faults(schedule=[{"at_request": 1, "kind": "reset"}])
    with pytest.raises(requests.ConnectionError):
        requests.get(
            f"{sim.primary['api_domain']}/crm/v6/Leads",
            params=PARAMS,
            headers={"Authorization": f"Zoho-oauthtoken {tok}"},
            timeout=10,
        )
    assert get(sim.primary, "/crm/v6/Leads", tok, PARAMS).status_code == 200


def test_truncated_body(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    sim.control.set_faults(schedule=[{"at_request": 1, "kind": "truncate"}])
    url = urlsplit(sim.primary["api_domain"])
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            (
                f"GET {url.path}/crm/v6/Leads?fields=Last_Name HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Zoho-oauthtoken {tok}\r\n\r\n"
            ).encode()
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
    )
    assert head.startswith(b"HTTP/1.1 200") and 0 < len(body) < length


def test_slow_answer(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    sim.control.set_faults(schedule=[{"at_request": 1, "kind": "slow"}], slow_ms=600)
    started = time.monotonic()
    assert get(sim.primary, "/crm/v6/Leads", tok, PARAMS).status_code == 200
    assert time.monotonic() - started >= 0.6


def test_expire_token_early(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    sim.control.set_faults(schedule=[{"at_request": 1, "kind": "expire_token"}])
    assert error(get(sim.primary, "/crm/v6/Leads", tok, PARAMS))["code"] == "INVALID_TOKEN"
    assert get(sim.primary, "/crm/v6/Leads", tok, PARAMS).status_code == 401
    assert get(sim.primary, "/crm/v6/Leads", token(sim.primary), PARAMS).status_code == 200


def test_expire_page_token_early(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    nxt = get(sim.primary, "/crm/v6/Leads", tok, PARAMS).json()["info"]["next_page_token"]
    sim.control.set_faults(schedule=[{"at_request": 1, "kind": "expire_page_token"}])
    resp = get(sim.primary, "/crm/v6/Leads", tok, {**PARAMS, "page_token": nxt})
    assert resp.status_code == 400 and error(resp)["code"] == "EXPIRED_VALUE"


def test_token_calls_are_faulted(sim: RunningSimulator) -> None:
    sim.control.set_faults(schedule=[{"at_request": 1, "kind": "500"}])
    assert grant(sim.primary).status_code == 500
    assert grant(sim.primary).status_code == 200


def test_rate_is_seeded_and_spares_control(sim: RunningSimulator) -> None:
    tok = token(sim.primary)

    def run() -> list[int]:
        sim.control.set_faults(rate=0.3, kinds=["429", "500"], seed=5)
        codes = []
        for _ in range(40):
            codes.append(get(sim.primary, "/crm/v6/Leads", tok, PARAMS).status_code)
            sim.control.stats()  # control calls never faulted nor counted by the fault schedule
        return codes

    first, second = run(), run()
    assert first == second
    assert 4 <= sum(c != 200 for c in first) <= 24
    sim.control.clear_faults()
    assert all(get(sim.primary, "/crm/v6/Leads", tok, PARAMS).status_code == 200 for _ in range(10))

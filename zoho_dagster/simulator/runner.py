"""Python API: `run_simulator(...)` starts the simulator in a subprocess; `SimulatorControl` drives it."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests


class SimulatorControl:
    """Thin wrapper over the `/__simulator/` endpoints (docs/contracts.md §1)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        org: str | None = None,
        timeout: float | None = 120,
        **params: str,
    ) -> Any:
        if org:
            params["org"] = org
        resp = self._session.request(
            method, f"{self.base_url}/__simulator/{path}", json=body, params=params, timeout=timeout
        )
        if resp.status_code >= 400:
            raise RuntimeError(f"simulator control {method} {path} failed: {resp.status_code} {resp.text}")
        return resp.json()

    def reset(self) -> None:
        self._call("POST", "reset")

    def create(self, module: str, data: dict[str, Any], org: str | None = None) -> str:
        return str(self._call("POST", f"records/{module}", {"data": data}, org)["id"])

    def update(self, module: str, id: str, data: dict[str, Any], org: str | None = None) -> None:
        self._call("PATCH", f"records/{module}/{id}", {"data": data}, org)

    def delete(self, module: str, id: str, permanent: bool = False, org: str | None = None) -> None:
        self._call("DELETE", f"records/{module}/{id}", None, org, permanent=str(permanent).lower())

    def truth(self, module: str, org: str | None = None) -> dict[str, Any]:
        return dict(self._call("GET", f"truth/{module}", None, org))

    def set_children(
        self, module: str, id: str, field: str, rows: list[dict[str, Any]], org: str | None = None
    ) -> None:
        """Replace record ``id``'s subform rows or links in ``field`` (a row with an ``id`` keeps it); the
        record's Modified_Time moves."""
        self._call("PUT", f"children/{module}/{id}/{field}", {"data": rows}, org)

    def drift_field(self, module: str, field: str, data_type: str, org: str | None = None) -> None:
        """Change a field's data_type in the fields metadata and in every value it renders from now on."""
        self._call("POST", "drift", {"module": module, "field": field, "data_type": data_type}, org)

    def set_org(self, mc_status: bool, org: str | None = None) -> None:
        """Switch multi-currency on or off (`/org`'s `mc_status`, `/org/currencies`)."""
        self._call("POST", "org", {"mc_status": mc_status}, org)

    def set_visibility(
        self,
        converted_share: float | None = None,
        awaiting_approval_share: float | None = None,
        org: str | None = None,
    ) -> dict[str, float]:
        """Set the share of Leads that are converted and the share of records (every record module) awaiting
        approval; ``None`` keeps a share. Records that change visibility keep their Modified_Time. Returns
        both shares (defaults 0.30 and 0.05; a reset restores them)."""
        body = {"converted_share": converted_share, "awaiting_approval_share": awaiting_approval_share}
        return dict(self._call("POST", "visibility", body, org))

    def set_readings(
        self,
        coql_includes_hidden: bool | None = None,
        bulk_includes_hidden: bool | None = None,
        count_includes_hidden: bool | None = None,
        single_record_includes_hidden: bool | None = None,
    ) -> dict[str, bool]:
        """Choose the permissive (True) or strict (False, the default and the state after a reset) reading of
        each UNCONFIRMED behaviour about converted and awaiting-approval records: whether COQL, Bulk Read, the
        count API and a single-record read include them. ``None`` keeps a reading. Returns all four."""
        names = ("coql_includes_hidden", "bulk_includes_hidden", "count_includes_hidden")
        values = (coql_includes_hidden, bulk_includes_hidden, count_includes_hidden)
        body = {name: value for name, value in zip(names, values, strict=True) if value is not None}
        if single_record_includes_hidden is not None:
            body["single_record_includes_hidden"] = single_record_includes_hidden
        return dict(self._call("POST", "readings", body))

    def warm(self, module: str, org: str | None = None) -> int:
        """Render every generated record of ``module`` and keep them all (the benchmarks' data at rest);
        returns how many. About 0.35 ms a Lead on one core, hence no time limit (300,000 Leads: ~2 min)."""
        return int(self._call("POST", f"warm/{module}", None, org, timeout=None)["rendered"])

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "stats"))

    def reset_stats(self) -> None:
        self._call("POST", "stats/reset")

    def set_faults(
        self,
        rate: float = 0.0,
        kinds: list[str] | None = None,
        schedule: list[dict[str, Any]] | None = None,
        seed: int = 1,
        slow_ms: int = 2000,
    ) -> None:
        self._call(
            "POST",
            "faults",
            {
                "rate": rate,
                "kinds": kinds or [],
                "schedule": schedule or [],
                "seed": seed,
                "slow_ms": slow_ms,
            },
        )

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def set_limits(
        self,
        credits_per_day: int | None = None,
        concurrency: int | None = None,
        edition: str | None = None,
        org: str | None = None,
    ) -> dict[str, Any]:
        body = {"credits_per_day": credits_per_day, "concurrency": concurrency, "edition": edition}
        return dict(self._call("POST", "limits", body, org))

    def add_client(self, scopes: list[str], admin: bool = True, org: str | None = None) -> dict[str, str]:
        return dict(self._call("POST", "clients", {"scopes": scopes, "admin": admin}, org))

    # Additions to the contract: grant codes for the authorization_code flow, and a clock to reach expiries.
    def grant_code(self, client_id: str | None = None, org: str | None = None) -> str:
        return str(self._call("POST", "grant_code", {"client_id": client_id}, org)["code"])

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "clock", {"advance_seconds": seconds})

    # Notifications (docs/zoho-crm-api.md §3.12): the channels, delivery stats and delivery faults.
    def notifications(self) -> dict[str, Any]:
        """``{"channels": [...], "stats": {"notifications", "delivered", "refused", "failed", "dropped",
        "duplicated", "reordered"}, "pending": n, "faults": {...}}``."""
        return dict(self._call("GET", "notifications"))

    def set_notification_faults(
        self,
        duplicate_rate: float = 0.0,
        reorder_window: int = 0,
        drop_rate: float = 0.0,
        outage_seconds: float = 0.0,
        seed: int = 1,
    ) -> dict[str, Any]:
        """Deliveries from now on: sent twice at ``duplicate_rate``, shuffled within ``reorder_window``,
        never sent at ``drop_rate``, all failing for ``outage_seconds`` (a receiver that is down)."""
        body = {
            "duplicate_rate": duplicate_rate,
            "reorder_window": reorder_window,
            "drop_rate": drop_rate,
            "outage_seconds": outage_seconds,
            "seed": seed,
        }
        return dict(self._call("POST", "notifications/faults", body))

    def clear_notification_faults(self) -> None:
        self._call("DELETE", "notifications/faults")

    def wait_notifications_sent(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until every change so far has been posted (delivered, refused or lost); the state then."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.notifications()
            if not state["pending"]:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"{state['pending']} notifications still unsent after {timeout} s")
            time.sleep(0.05)


@dataclass
class RunningSimulator:
    process: subprocess.Popen[str]
    connection: dict[str, Any]
    control: SimulatorControl

    @property
    def base_url(self) -> str:
        return str(self.connection["base_url"])

    @property
    def primary(self) -> dict[str, Any]:
        return dict(self.connection["orgs"][0])


@contextlib.contextmanager
def run_simulator(
    seed: int = 1,
    records: int = 2500,
    latency_ms: int = 0,
    token_lifetime: int = 3600,
    page_token_cap: int = 100_000,
    host: str = "127.0.0.1",
) -> Iterator[RunningSimulator]:
    """Start `python -m zoho_dagster.simulator --port 0` and yield once it serves; stop it on exit."""
    cmd = [
        sys.executable,
        "-m",
        "zoho_dagster.simulator",
        "--port",
        "0",
        "--host",
        host,
        "--seed",
        str(seed),
        "--records",
        str(records),
        "--latency-ms",
        str(latency_ms),
        "--token-lifetime",
        str(token_lifetime),
        "--page-token-cap",
        str(page_token_cap),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator exited before serving (code {proc.wait()})")
        connection = json.loads(line)
        yield RunningSimulator(proc, connection, SimulatorControl(connection["base_url"]))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

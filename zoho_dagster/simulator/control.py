"""`/__simulator/` control endpoints (docs/contracts.md §1): never faulted, never counted, never limited."""

from __future__ import annotations

import json
from typing import Any

from .accounts import ALL_SCOPES
from .errors import ApiError
from .metadata_api import module_rows
from .org_api import currency_rows, profile_rows, role_rows
from .schema import module_spec
from .state import Simulator


def _module(name: str) -> str:
    spec = module_spec(name)
    if spec is None:
        raise ApiError(
            400, "INVALID_MODULE", "the module name given seems to be invalid", {"resource_path_index": 0}
        )
    return spec.api_name


def handle(
    sim: Simulator, method: str, parts: list[str], params: dict[str, str], raw: bytes
) -> tuple[int, Any]:
    """Dispatch one control call; `parts` is the path after `/__simulator/`."""
    try:
        body: dict[str, Any] = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ApiError(400, "INVALID_DATA", "body is not JSON", {}) from None
    org = sim.org(params.get("org"))
    route = (method, parts[0] if parts else "", len(parts))
    if parts and parts[0] == "notifications":
        return sim.notifier.control(method, parts[1:], body)
    if route == ("POST", "reset", 1):
        sim.reset()
        return 200, {"status": "success"}
    if route == ("POST", "records", 2):
        return 201, {"id": org.store.create(_module(parts[1]), dict(body.get("data") or {}))}
    if route == ("PATCH", "records", 3):
        org.store.update(_module(parts[1]), parts[2], dict(body.get("data") or {}))
        return 200, {"id": parts[2]}
    if route == ("DELETE", "records", 3):
        permanent = params.get("permanent", "false").lower() == "true"
        org.store.delete(_module(parts[1]), parts[2], permanent)
        return 200, {"id": parts[2]}
    if route == ("GET", "truth", 2) and parts[1] == "users":
        users = [{"id": u.id, "full_name": u.full_name, "email": u.email} for u in org.users]
        return 200, {"data": users, "deleted": []}
    if route == ("GET", "truth", 2) and parts[1] == "modules":
        return 200, {"data": module_rows(org), "deleted": []}
    if route == ("GET", "truth", 2) and parts[1] in ("roles", "profiles", "currencies"):
        render = _admin_clock(org)
        rows = {
            "roles": lambda: role_rows(org),
            "profiles": lambda: profile_rows(org, render),
            "currencies": lambda: currency_rows(org, render) if org.mc_status else [],
        }[parts[1]]()
        return 200, {"data": rows, "deleted": []}
    if route == ("GET", "truth", 2):
        return 200, org.store.truth(_module(parts[1]))
    if route == ("PUT", "children", 4):
        # Replace a record's subform rows or links (docs/contracts.md §1); the parent's Modified_Time moves.
        rows = body.get("data")
        if not isinstance(rows, list):
            raise ApiError(400, "INVALID_DATA", "data must be a list of rows", {})
        org.store.replace_children(_module(parts[1]), parts[2], parts[3], rows)
        return 200, {"id": parts[2]}
    if route == ("POST", "drift", 1):
        # A field's data_type changes in metadata and in every value read from now on (docs/zoho-crm-api.md
        # §3.3).
        org.store.computed.set_drift(
            _module(str(body.get("module"))), str(body.get("field")), str(body.get("data_type"))
        )
        return 200, {
            "drift": [
                {"module": m, "field": f, "data_type": t} for (m, f), t in org.store.computed.drift.items()
            ]
        }
    if route == ("POST", "org", 1):
        if "mc_status" in body:
            org.mc_status = bool(body["mc_status"])
        return 200, {"mc_status": org.mc_status}
    if route == ("POST", "visibility", 1):
        # Shares of converted leads and of records awaiting approval (visibility.py); records that change
        # visibility keep their Modified_Time.
        org.store.visibility.configure(body.get("converted_share"), body.get("awaiting_approval_share"))
        return 200, org.store.visibility.describe()
    if route == ("GET", "visibility", 1):
        return 200, org.store.visibility.describe()
    if route == ("POST", "readings", 1):
        # Strict or permissive readings of UNCONFIRMED behaviour (visibility.Readings); reset restores strict.
        sim.readings.configure(body)
        return 200, sim.readings.describe()
    if route == ("GET", "readings", 1):
        return 200, sim.readings.describe()
    if route == ("POST", "warm", 2):
        return 200, {"rendered": org.store.warm(_module(parts[1]))}
    if route == ("GET", "stats", 1):
        return 200, sim.stats.snapshot(sim.accounts.grant_count)
    if route == ("POST", "stats", 2) and parts[1] == "reset":
        sim.stats.reset(sim.accounts.grant_count)
        return 200, {"status": "success"}
    if route == ("POST", "faults", 1):
        sim.faults.configure(body)
        return 200, sim.faults.describe()
    if route == ("GET", "faults", 1):
        return 200, sim.faults.describe()
    if route == ("DELETE", "faults", 1):
        sim.faults.clear()
        return 200, {"status": "success"}
    if route == ("POST", "limits", 1):
        org.limits.configure(body.get("credits_per_day"), body.get("concurrency"), body.get("edition"))
        return 200, {
            "edition": org.limits.edition,
            "credits_per_day": org.limits.credits_per_day,
            "concurrency": org.limits.concurrency,
        }
    if route == ("POST", "clients", 1):
        return 201, _add_client(sim, org.org_id, body)
    if route == ("POST", "grant_code", 1):
        client = sim.accounts.clients.get(str(body.get("client_id") or org.client.client_id))
        if client is None:
            raise ApiError(400, "INVALID_DATA", "unknown client", {})
        return 201, {"code": sim.accounts.issue_code(client, sim.clock.now())}
    if route == ("POST", "clock", 1):
        sim.clock.advance(float(body.get("advance_seconds", 0)))
        return 200, {"now": sim.clock.now()}
    if route == ("GET", "connection", 1):
        return 200, sim.connection()
    raise ApiError(
        404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one", {}
    )


def _admin_clock(org: Any) -> Any:
    from .clock import render_time

    offset = org.users[0].offset
    return lambda epoch: render_time(epoch, offset)


def _add_client(sim: Simulator, org_id: str, body: dict[str, Any]) -> dict[str, Any]:
    org = sim.orgs[org_id]
    admin = bool(body.get("admin", True))
    scopes = tuple(body.get("scopes") or ALL_SCOPES)
    # Admin clients act as the org's first user; others as the first non-admin user.
    user = 0 if admin else next(n for n, u in enumerate(org.users) if not u.admin)
    client, refresh = sim.accounts.add_client(org.region, org_id, user, admin, scopes)
    return {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "refresh_token": refresh,
        "soid": org.soid,
    }

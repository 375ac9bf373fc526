"""Record JSON conventions (docs/zoho-crm-api.md §3.3, §5) and deterministic, realistic data."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from zoho_dagster.simulator import RunningSimulator

from .helpers import RECORD_MODULES, get, token

OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def test_value_shapes_follow_field_types(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    fields = get(sim.primary, "/crm/v6/settings/fields", tok, {"module": "Leads"}).json()["fields"]
    assert len(fields) > 50
    assert any(len(f["api_name"]) >= 40 and f["custom_field"] for f in fields)
    types = {f["api_name"]: f["data_type"] for f in fields}
    assert {
        "lookup",
        "ownerlookup",
        "userlookup",
        "multiselectpicklist",
        "bigint",
        "integer",
        "double",
        "currency",
        "boolean",
        "date",
        "datetime",
        "picklist",
        "percent",
        "autonumber",
    } <= set(types.values())
    seen_null = seen_tag = False
    for rec in sim.control.truth("Leads")["data"][:300]:
        for name, value in rec.items():
            seen_null |= value is None
            if name == "Tag":
                assert isinstance(value, list) and all(set(t) == {"name", "id"} for t in value)
                seen_tag |= bool(value)
                continue
            if value is None or name not in types:
                continue
            dt = types[name]
            if dt in ("lookup",):
                assert set(value) == {"name", "id"} and value["id"].isdigit()
            elif dt in ("ownerlookup", "userlookup"):
                assert set(value) == {"name", "id", "email"}
            elif dt == "multiselectpicklist":
                assert isinstance(value, list) and all(isinstance(v, str) for v in value)
            elif dt == "bigint":
                assert isinstance(value, str) and value.isdigit()
            elif dt == "integer":
                assert isinstance(value, int) and not isinstance(value, bool)
            elif dt in ("double", "currency", "percent", "decimal"):
                assert isinstance(value, (int, float))
            elif dt == "boolean":
                assert isinstance(value, bool)
            elif dt == "date":
                assert re.match(r"^\d{4}-\d\d-\d\d$", value)
            elif dt == "datetime":
                assert OFFSET.match(value), value
        assert isinstance(rec["$approved"], bool) and rec["$state"] == "save"
        assert (rec["$approval_state"] == "approved") is rec["$approved"]
        assert rec["id"].isdigit() and 18 <= len(rec["id"]) <= 19
    assert seen_null and seen_tag


def test_datetimes_carry_the_owners_offset(sim: RunningSimulator) -> None:
    tok = token(sim.primary)
    users = {u["id"]: u for u in get(sim.primary, "/crm/v6/users", tok, {"type": "AllUsers"}).json()["users"]}
    offsets = set()
    for rec in sim.control.truth("Leads")["data"][:200]:
        owner = users[rec["Owner"]["id"]]
        offset = rec["Modified_Time"][-6:]
        minutes = owner["offset"] // 60_000
        assert offset == f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        offsets.add(offset)
    assert {"+05:30", "-08:00", "+00:00", "+09:00"} <= offsets


def test_every_module_has_system_fields(sim: RunningSimulator) -> None:
    for module in RECORD_MODULES:
        rec = sim.control.truth(module)["data"][0]
        assert {"Modified_Time", "Created_Time", "Owner", "Created_By", "Modified_By", "id"} <= set(rec), (
            module
        )


def test_modified_time_spread_and_big_modules(sim: RunningSimulator) -> None:
    now = datetime.now(timezone.utc)
    for module in ("Leads", "Contacts", "Accounts", "Deals"):
        data = sim.control.truth(module)["data"]
        assert len(data) > 2000, module
        ages = [(now - datetime.fromisoformat(r["Modified_Time"])).days for r in data]
        assert max(ages) >= 380 and min(ages) <= 2
        older = sum(a > 365 for a in ages)
        assert 0 < older < len(ages) * 0.2


def test_deterministic_from_seed(sim: RunningSimulator) -> None:
    first = sim.control.truth("Deals")["data"][:50]
    sim.control.reset()
    assert sim.control.truth("Deals")["data"][:50] == first

"""Helpers for the end-to-end tests: point the package at the simulator, materialize ranges, compare with
truth.

Expected values always come from the simulator (its truth endpoint and its own field definitions), never from
the code under test.
"""

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from zoho_dagster.assets import build_stream_assets
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.resource import ZohoCRMResource
from zoho_dagster.simulator.schema import MODULES_BY_NAME
from zoho_dagster.streams import CATALOG, StreamSpec

FAST = 100.0
"""Requests per second in tests: the simulator is local, the default 5/s would only make the suite slow."""


def simulator_variables(org: dict[str, Any]) -> dict[str, str]:
    """The ``ZOHO_CRM_*`` variables that point the package at a simulated org (its Self Client, soid,
    region and hosts), as a user would set them for Zoho."""
    return {
        "ZOHO_CRM_CLIENT_ID": str(org["client_id"]),
        "ZOHO_CRM_CLIENT_SECRET": str(org["client_secret"]),
        "ZOHO_CRM_SOID": str(org["soid"]),
        "ZOHO_CRM_REGION": str(org["region"]),
        "ZOHO_CRM_ACCOUNTS_URL": str(org["accounts_url"]),
        "ZOHO_CRM_API_DOMAIN": str(org["api_domain"]),
    }


def use_simulator(monkeypatch: pytest.MonkeyPatch, simulator: Any, database_url: str) -> None:
    for variable, value in simulator_variables(simulator.primary).items():
        monkeypatch.setenv(variable, value)
    for variable in ("ZOHO_CRM_REFRESH_TOKEN", "ZOHO_CRM", "ZOHO_CRM_ANCHOR_DATE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ZOHO_DAGSTER_DATABASE_URL", database_url)


def today() -> date:
    return datetime.now(timezone.utc).date()


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def assets_by_name(anchor: date, specs: Sequence[StreamSpec] = CATALOG) -> dict[str, dg.AssetsDefinition]:
    return {a.key.to_user_string(): a for a in build_stream_assets(specs, anchor=anchor)}


def materialize(
    assets: Iterable[dg.AssetsDefinition],
    first: date | None = None,
    last: date | None = None,
    raise_on_error: bool = True,
    **resource_fields: Any,
) -> dg.ExecuteInProcessResult:
    """One run over ``[first, last]`` (partition keys, inclusive) or, with no dates, an unpartitioned run."""
    tags = {}
    if first is not None:
        tags = {
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": (last or first).isoformat(),
        }
    resource_fields.setdefault("requests_per_second", FAST)
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize(
            list(assets),
            instance=instance,
            resources={
                "zoho_crm": ZohoCRMResource.from_env(**resource_fields),
                "zoho_crm_io_manager": PostgresIOManager(),
            },
            tags=tags,
            raise_on_error=raise_on_error,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def truth_in(truth: dict, since: datetime, until: datetime) -> tuple[dict[str, dict], set[str]]:
    """Truth records modified in ``[since, until)`` by id, and deleted ids deleted since ``since``."""
    live = {r["id"]: r for r in truth["data"] if since <= parse_time(r["Modified_Time"]) < until}
    deleted = {d["id"] for d in truth["deleted"] if parse_time(d["deleted_time"]) >= since}
    return live, deleted


def table(database_url: str, stream: str, schema: str = "zoho_crm") -> dict[str, dict]:
    """Every row of a synced table by id, ``_zoho_synced_at`` left out (it changes on every write)."""
    engine = make_engine(database_url)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(stream, schema=schema):
            return {}
        reflected = sa.Table(stream, sa.MetaData(), schema=schema, autoload_with=conn)
        rows = conn.execute(sa.select(reflected)).mappings()
        return {row["id"]: {k: v for k, v in row.items() if k != "_zoho_synced_at"} for row in rows}


def columns_by_field(database_url: str, stream: str, schema: str = "zoho_crm") -> dict[tuple[str, str], str]:
    """(api_name, part) → column, from the comments the IO manager leaves on each column."""
    result = {}
    for column in sa.inspect(make_engine(database_url)).get_columns(stream, schema):
        comment = column.get("comment") or ""
        if comment.startswith("zoho:"):
            api_name, _, part = comment[5:].rpartition("#")
            result[(api_name, part)] = column["name"]
    return result


def expected_value(value: Any, data_type: str, api_name: str) -> Any:
    """What a Zoho JSON value must read back as from Postgres, by the simulator's data_type (ref. §3.3)."""
    if value is None:
        return None
    if api_name == "Tag":
        return value
    if data_type == "datetime":
        return parse_time(value)
    if data_type == "date":
        return date.fromisoformat(value)
    if data_type in ("integer", "bigint"):
        return int(value)
    if data_type in ("double", "currency", "percent", "decimal"):
        return Decimal(str(value))
    if data_type == "boolean":
        return bool(value)
    if data_type == "multiselectpicklist":
        return list(value)
    if isinstance(value, (dict, list)):
        return json.loads(json.dumps(value))
    return str(value)


def as_listed(spec: Any, record: dict[str, Any]) -> dict[str, Any]:
    """The truth's record as a sync stores it: unused fields left out (not in the default fields metadata,
    ref. §3.3). Rich text stays whole: the sync reads what the list API cut (client/full_text.py)."""
    return {k: v for k, v in record.items() if k not in spec.unused_fields}


def assert_rows_match_truth(database_url: str, stream: str, module: str, records: dict[str, dict]) -> None:
    """Every truth record's every field equals its typed column(s) in the table."""
    rows = table(database_url, stream)
    columns = columns_by_field(database_url, stream)
    spec = MODULES_BY_NAME[module]
    # List reads never carry subform / multi-lookup values (ref. §2.5): their rows are child tables. An unused
    # field (removed from every layout) is not in the default fields metadata, so it is not synced (§3.3).
    unlisted = ("subform", "multiselectlookup", "multiuserlookup")
    fields = [f for f in spec.fields if f.data_type not in unlisted and not f.unused]
    problems = []
    for record_id, truth_record in records.items():
        record = as_listed(spec, truth_record)
        row = rows[record_id]
        assert row["_zoho_deleted_at"] is None
        raw = row["_raw"]
        assert {k: raw[k] for k in set(raw) & set(record)} == {k: record[k] for k in set(raw) & set(record)}
        assert {f.api_name for f in fields} <= set(raw)
        for field in fields:
            value = record.get(field.api_name)
            if field.data_type in ("lookup", "ownerlookup", "userlookup"):
                parts = ["id", "name"] + (["email"] if field.data_type != "lookup" else [])
                for part in parts:
                    want = value.get(part) if value else None
                    got = row[columns[(field.api_name, part)]]
                    if got != want:
                        problems.append((record_id, field.api_name, part, want, got))
            else:
                want = expected_value(value, field.data_type, field.api_name)
                got = row[columns[(field.api_name, "")]]
                if got != want:
                    problems.append((record_id, field.api_name, "", want, got))
    assert not problems, problems[:5]


def anchor_days_ago(days: int) -> date:
    return today() - timedelta(days=days)

"""Asset checks against the simulator's truth and a real Postgres table written by the sync."""

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from zoho_dagster.assets import build_stream_asset, build_stream_assets
from zoho_dagster.checks import (
    COLUMNS,
    FRESHNESS,
    ROW_COUNT,
    UNIQUE_IDS,
    build_checks,
    columns_result,
    freshness_result,
    row_count_result,
    unique_ids_result,
)
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.replication import ReplicatedStream
from zoho_dagster.streams import stream
from zoho_dagster_tests.client.helpers import shown_by_default
from zoho_dagster_tests.operations_support import (
    earliest_modified,
    materialize_range,
    resources,
    today_key,
    zoho_resource,
)

UTC = timezone.utc
TARGET = ReplicatedStream(stream("leads"), TableName("zoho_crm", "leads"))
LEADS = [TARGET]
LAG = timedelta(minutes=10)


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def live_truth(simulator: object, module: str) -> list[dict]:
    return simulator.control.truth(module)["data"]  # type: ignore[attr-defined]


def shown_truth(simulator: object, module: str) -> list[dict]:
    """What the simulator's count API counts under its strict reading (docs/zoho-crm-api.md §10)."""
    return shown_by_default(simulator.control.truth(module))  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def _small_simulator() -> Iterator[object]:
    """A simulator with 300 leads (still more than 50 fields): a full sync per test stays a few seconds."""
    from zoho_dagster.simulator import run_simulator

    with run_simulator(records=300) as running:
        yield running


@pytest.fixture
def simulator(_small_simulator: object) -> object:
    _small_simulator.control.reset()  # type: ignore[attr-defined]
    return _small_simulator


@pytest.fixture
def synced_leads(simulator: object, database_url: str) -> dg.ExecuteInProcessResult:
    """All Leads records synced over daily partitions (anchor: the oldest Modified_Time), with checks."""
    with dg.instance_for_test() as instance:
        result = materialize_range(
            LEADS,
            simulator,
            database_url,
            earliest_modified(simulator, "Leads"),
            instance,
            extra=build_checks(LEADS, interval_minutes=60),
        )
    assert result.success
    return result


@pytest.fixture
def leads_table(simulator: object, database_url: str) -> None:
    """Every Leads record in zoho_crm.leads, synced through yearly windows: the same writer and reader as the
    daily partitions, without one Dagster event per day (which dominates a year of daily partitions)."""
    first = earliest_modified(simulator, "Leads")
    yearly = dg.TimeWindowPartitionsDefinition(
        start=datetime(first.year, 1, 1, tzinfo=UTC), cron_schedule="0 0 1 1 *", fmt="%Y", end_offset=1
    )
    asset = build_stream_asset(stream("leads"), "zoho_crm.leads", yearly)
    this_year = str(datetime.now(UTC).year)
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [asset],
            instance=instance,
            resources=resources(simulator, database_url),
            tags={
                "dagster/asset_partition_range_start": str(first.year),
                "dagster/asset_partition_range_end": this_year,
            },
        ).success


def test_all_checks_pass_after_a_full_sync(
    synced_leads: dg.ExecuteInProcessResult, simulator: object
) -> None:
    checks = evaluations(synced_leads)
    assert set(checks) == {ROW_COUNT, UNIQUE_IDS, FRESHNESS, COLUMNS}
    assert all(check.passed for check in checks.values()), {n: c.description for n, c in checks.items()}
    expected = len(live_truth(simulator, "Leads"))
    shown = len(shown_truth(simulator, "Leads"))
    assert shown < expected  # the org has converted leads and leads awaiting approval
    count = checks[ROW_COUNT].metadata
    assert count["zoho_count"].value == shown
    assert count["table_live_rows"].value == expected
    assert count["table_rows_hidden_by_default"].value == expected - shown
    assert count["compared_scope"].value == "records the list API shows by default"
    assert checks[UNIQUE_IDS].metadata["rows"].value >= expected
    assert checks[COLUMNS].metadata["differences"].value == 0


def test_row_count_tolerates_only_zoho_lag(leads_table: None, simulator: object, database_url: str) -> None:
    control = simulator.control  # type: ignore[attr-defined]
    client = zoho_resource(simulator, database_url).get_client()
    engine = make_engine(database_url)

    def check() -> dg.AssetCheckResult:
        with engine.connect() as conn:
            return row_count_result(conn, TARGET, client.count("Leads"), datetime.now(UTC), LAG)

    # A lead created and synced a moment ago that Zoho's count does not include (as if its statistics lagged):
    # here it is gone from Zoho again, which the count cannot tell apart. Tolerated: modified within the lag.
    new_id = control.create("Leads", {"Last_Name": "Lagging", "Company": "Lag Ltd"})
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            build_one_partition(),
            partition_key=today_key(),
            instance=instance,
            resources=resources(simulator, database_url),
        ).success
    control.delete("Leads", new_id)
    lagging = check()
    assert lagging.passed, lagging.description
    assert lagging.metadata["rows_modified_within_lag"].value >= 1
    assert lagging.metadata["zoho_count"].value == len(shown_truth(simulator, "Leads"))

    # An old lead deleted in Zoho and not yet synced: no lag explains it, the check fails by exactly one.
    old = min(shown_truth(simulator, "Leads"), key=lambda record: record["Modified_Time"])
    control.delete("Leads", old["id"])
    stale = check()
    assert not stale.passed
    assert stale.metadata["zoho_count"].value == len(shown_truth(simulator, "Leads"))
    assert stale.metadata["difference"].value == -2  # the old lead and the lagging one: both still live here


def build_one_partition() -> list[dg.AssetsDefinition]:
    return build_stream_assets([stream("leads")], {"leads": "zoho_crm.leads"})


def test_unique_ids_catches_a_duplicate(leads_table: None, database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE zoho_crm.leads DROP CONSTRAINT leads_pkey")
        conn.exec_driver_sql("INSERT INTO zoho_crm.leads SELECT * FROM zoho_crm.leads ORDER BY id LIMIT 1")
        duplicate = conn.exec_driver_sql("SELECT min(id) FROM zoho_crm.leads").scalar()
    with engine.connect() as conn:
        result = unique_ids_result(conn, TARGET)
    assert not result.passed
    assert result.metadata["duplicate_rows"].value == 1
    assert result.metadata["duplicate_ids_sample"].value == duplicate


def test_columns_report_new_changed_and_removed_fields(
    leads_table: None, simulator: object, database_url: str
) -> None:
    fields = zoho_resource(simulator, database_url).get_client().list_fields("Leads")
    by_type = {f["data_type"]: f["api_name"] for f in fields}
    email, currency = by_type["email"], by_type["currency"]
    engine = make_engine(database_url)
    with engine.begin() as conn:
        columns = {
            comment: name
            for name, comment in conn.exec_driver_sql(
                "SELECT attname, col_description(attrelid, attnum) FROM pg_attribute "
                "WHERE attrelid = 'zoho_crm.leads'::regclass AND attnum > 0 AND NOT attisdropped"
            )
        }
        email_column, currency_column = columns[f"zoho:{email}#"], columns[f"zoho:{currency}#"]
        conn.exec_driver_sql(f'ALTER TABLE zoho_crm.leads DROP COLUMN "{email_column}"')
        conn.exec_driver_sql(f'ALTER TABLE zoho_crm.leads ALTER COLUMN "{currency_column}" TYPE text')
        conn.exec_driver_sql("ALTER TABLE zoho_crm.leads ADD COLUMN retired_field text")
        conn.exec_driver_sql("COMMENT ON COLUMN zoho_crm.leads.retired_field IS 'zoho:Retired_Field__c#'")
    with engine.connect() as conn:
        result = columns_result(conn, TARGET, fields)
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["new_fields"].value == [f"{email} → {email_column}"]
    assert result.metadata["changed_types"].value == [f"{currency_column} ({currency}): text → numeric"]
    assert result.metadata["removed_fields"].value == ["retired_field (Retired_Field__c)"]


def test_freshness_of_the_open_partition(simulator: object, database_url: str) -> None:
    interval = timedelta(minutes=60)
    with dg.instance_for_test() as instance:
        now = datetime.now(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        # Nothing synced yet: fine in the first interval of a new day, stale after it.
        leads = stream("leads")
        assert freshness_result(instance, leads, midnight + timedelta(minutes=30), interval).passed
        assert not freshness_result(instance, leads, midnight + timedelta(minutes=66), interval).passed
        assert not freshness_result(instance, stream("users"), now, interval).passed

        assert dg.materialize(
            build_one_partition(),
            partition_key=today_key(),
            instance=instance,
            resources=resources(simulator, database_url),
        ).success
        synced = datetime.now(UTC)
        fresh = freshness_result(instance, stream("leads"), synced, interval)
        assert fresh.passed, fresh.description
        assert fresh.metadata["partition"].value == today_key()
        # The interval plus the five-minute allowance for the run itself, and not a minute more.
        assert freshness_result(instance, stream("leads"), synced + timedelta(minutes=64), interval).passed
        later = synced + timedelta(minutes=66)
        late = freshness_result(instance, stream("leads"), later, interval)
        if later.date() == synced.date():
            assert not late.passed
            assert "more than the 65 allowed" in (late.description or "")
        else:  # past midnight the new day's partition is young, whatever yesterday's last sync
            assert late.passed


def test_checks_on_a_table_not_synced_yet(database_url: str) -> None:
    with make_engine(database_url).connect() as conn:
        result = unique_ids_result(conn, TARGET)
    assert not result.passed
    assert result.description == "zoho_crm.leads does not exist yet; materialize leads first."


def test_row_count_counts_only_the_history_since_the_anchor(
    simulator: object, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the anchor inside the history, older records are never synced; the check must still pass."""
    modified = sorted(
        datetime.fromisoformat(record["Modified_Time"]).astimezone(UTC)
        for record in live_truth(simulator, "Leads")
    )
    anchor = modified[len(modified) // 2].date()
    monkeypatch.setenv("ZOHO_CRM_ANCHOR_DATE", anchor.isoformat())
    since_anchor = sum(1 for moment in modified if moment.date() >= anchor)
    shown_since_anchor = sum(
        1
        for record in shown_truth(simulator, "Leads")
        if datetime.fromisoformat(record["Modified_Time"]).astimezone(UTC).date() >= anchor
    )
    assert 0 < since_anchor < len(modified)
    with dg.instance_for_test() as instance:
        result = materialize_range(
            LEADS, simulator, database_url, anchor, instance, extra=build_checks(LEADS, interval_minutes=60)
        )
    checks = evaluations(result)
    count = checks[ROW_COUNT]
    assert count.passed, count.description
    assert count.metadata["zoho_count"].value == shown_since_anchor
    assert count.metadata["table_live_rows"].value == since_anchor


def test_row_count_matches_a_count_of_every_record_too(
    leads_table: None, simulator: object, database_url: str
) -> None:
    """Whether Zoho's count includes converted records and records awaiting approval is UNCONFIRMED: under the
    simulator's permissive reading the same table passes, compared with every row."""
    simulator.control.set_readings(count_includes_hidden=True)  # type: ignore[attr-defined]
    client = zoho_resource(simulator, database_url).get_client()
    with make_engine(database_url).connect() as conn:
        result = row_count_result(conn, TARGET, client.count("Leads"), datetime.now(UTC), LAG)
    assert result.passed, result.description
    assert result.metadata["zoho_count"].value == len(live_truth(simulator, "Leads"))
    assert result.metadata["compared_scope"].value == "every record"


def test_the_freshness_checks_run_alone_on_a_schedule(simulator: object, database_url: str) -> None:
    """The checks-only job notices a stream whose open partition was never synced, and passes after a sync."""
    from zoho_dagster.checks import FRESHNESS_CHECKS_JOB, build_freshness_check_schedule

    defs = dg.Definitions(
        assets=build_one_partition(),
        asset_checks=build_checks(LEADS, interval_minutes=5),
        schedules=[build_freshness_check_schedule([stream("leads")], minutes=5, enabled=False)],
        resources=resources(simulator, database_url),
    )
    job = defs.resolve_job_def(FRESHNESS_CHECKS_JOB)
    with dg.instance_for_test() as instance:
        before = datetime.now(UTC)
        stale = job.execute_in_process(instance=instance, raise_on_error=False)
        (evaluation,) = stale.get_asset_check_evaluations()
        assert evaluation.check_name == FRESHNESS
        if before - before.replace(hour=0, minute=0, second=0, microsecond=0) > timedelta(minutes=5):
            assert not evaluation.passed, evaluation.description
        assert dg.materialize(
            build_one_partition(),
            partition_key=today_key(),
            instance=instance,
            resources=resources(simulator, database_url),
        ).success
        fresh = job.execute_in_process(instance=instance)
        (evaluation,) = fresh.get_asset_check_evaluations()
        assert evaluation.passed, evaluation.description
        assert not fresh.get_asset_materialization_events()  # the checks alone: nothing was synced again

"""The daily credit budget (docs/design.md §3, "Credit budget"), against the simulator and a real Postgres.

Expected credits come from the reference's pricing (docs/zoho-crm-api.md §2.2, §3.5, §3.6, §7.2: 1 credit per
call, 200 records per page, 50 fields per call, ``Modified_Time`` in every pass; §3.8 for the COQL pass)
applied to the simulator's own truth and field list, and what was really spent from the simulator's credit
counter.
"""

import math
from datetime import datetime, timezone
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from zoho_dagster.assets import build_stream_asset
from zoho_dagster.client import ZohoConfigError
from zoho_dagster.client.coql import SAME_SHAPE_TYPES
from zoho_dagster.postgres import credit_ledger
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.settings import load_settings
from zoho_dagster.simulator.schema import MODULES_BY_NAME
from zoho_dagster.streams import stream
from zoho_dagster_tests.client.helpers import is_hidden_by_default
from zoho_dagster_tests.operations_support import resources

UTC = timezone.utc
BUDGET = "ZOHO_CRM_DAILY_CREDIT_BUDGET"
MONTHS = 4
"""The synced window: this month and the four before (about 140 of the simulator's 400 days of Leads)."""


def _month(year: int, month: int) -> datetime:
    """The first instant of ``month`` (which may be below 1 or above 12) of ``year``, in UTC."""
    year, index = divmod(year * 12 + month - 1, 12)
    return datetime(year, index + 1, 1, tzinfo=UTC)


def _window() -> tuple[datetime, datetime]:
    today = datetime.now(UTC)
    return _month(today.year, today.month - MONTHS), _month(today.year, today.month + 1)


def _sync(simulator: Any, database_url: str) -> dg.ExecuteInProcessResult:
    """One run of leads over the window, in monthly partitions (few Dagster events)."""
    start, end = _window()
    monthly = dg.TimeWindowPartitionsDefinition(
        start=start, cron_schedule="0 0 1 * *", fmt="%Y-%m", end_offset=1
    )
    asset = build_stream_asset(stream("leads"), "zoho_crm.leads", monthly)
    last = _month(end.year, end.month - 1)
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [asset],
            instance=instance,
            resources=resources(simulator, database_url),
            tags={
                "dagster/asset_partition_range_start": start.strftime("%Y-%m"),
                "dagster/asset_partition_range_end": last.strftime("%Y-%m"),
            },
            raise_on_error=False,
        )


def _expected_credits(simulator: Any) -> int:
    """The reference's price of this run: fields metadata, one count, the pages of every pass, deletions."""
    start, end = _window()
    truth = simulator.control.truth("Leads")["data"]
    # The estimate prices Zoho's count of the window, which under the simulator's strict reading leaves out
    # converted leads and leads awaiting approval (docs/zoho-crm-api.md §10).
    records = sum(
        1
        for record in truth
        if start <= datetime.fromisoformat(record["Modified_Time"]).astimezone(UTC) < end
        and not is_hidden_by_default(record)
    )
    spec = MODULES_BY_NAME["Leads"]
    fields = [f for f in spec.fields if f.api_name not in ("id", "Modified_Time") and not f.unused]
    # Fields COQL may not read fill records API passes of 49 (plus Modified_Time), 1 credit per page of 200;
    # the readable ones left over go to COQL passes of 48, 1 credit for a first page of 200 and 3 for each
    # further page of 2,000 (§3.8).
    listed = sum(1 for f in fields if f.data_type not in SAME_SHAPE_TYPES)
    records_passes = math.ceil(listed / 49)
    left_over = len(fields) - records_passes * 49
    coql_passes = math.ceil(max(0, left_over) / 48)
    records_pages = records_passes * max(1, math.ceil(records / 200))
    coql_pages = coql_passes * (1 + 3 * math.ceil(max(0, records - 200) / 2000))
    # Rich text the list cut is read whole, one record a call; a quarter of the values is assumed to pass 500.
    rich_text = math.ceil(records / 4) if spec.rich_fields else 0
    return 1 + 1 + records_pages + coql_pages + rich_text + 1


def _ledger(database_url: str) -> list[tuple[str, int]]:
    with make_engine(database_url).connect() as conn:
        if not sa.inspect(conn).has_table("credit_ledger", schema="zoho_dagster"):
            return []
        return [
            (str(s), int(c))
            for s, c in conn.exec_driver_sql("SELECT stream, credits FROM zoho_dagster.credit_ledger")
        ]


def _materialization(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """The run's metadata (one materialization per partition, all with the run's figures)."""
    event = result.get_asset_materialization_events()[-1]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def _failure(result: dg.ExecuteInProcessResult) -> str:
    [step] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return str(step.step_failure_data.user_failure_data.description)


def test_a_small_budget_stops_the_run_before_any_record_is_fetched(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUDGET, "5")
    simulator.control.reset_stats()
    result = _sync(simulator, database_url)

    assert not result.success
    expected = _expected_credits(simulator)
    sentence = _failure(result)
    assert sentence.startswith(
        f"This run of leads would spend about {expected:,} Zoho API credits but only 5 "
    )
    assert "daily budget of 5 are left (0 spent in the last 24 hours)" in sentence
    assert BUDGET in sentence
    stats = simulator.control.stats()
    assert "GET /crm/v6/Leads" not in stats["by_endpoint"]  # no record call
    assert "GET /crm/v6/Leads/deleted" not in stats["by_endpoint"]
    assert stats["total_credits"] == 2  # the fields metadata and the count
    assert _ledger(database_url) == [("leads", 2)]  # a refused run's spend is recorded too


def test_with_enough_budget_the_run_spends_about_its_estimate_and_the_ledger_grows_by_it(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BUDGET, "100000")
    simulator.control.reset_stats()
    result = _sync(simulator, database_url)

    assert result.success
    spent = simulator.control.stats()["total_credits"]
    metadata = _materialization(result)
    expected = _expected_credits(simulator)
    assert expected > 10  # several pages: a sensible test of the factor
    assert metadata["zoho/credits_estimated"] == expected
    assert isinstance(metadata["zoho/credits_estimated"], int) and isinstance(metadata["api_credits"], int)
    assert metadata["api_credits"] == spent
    # Parallel slices may add a partial page per pass each, the count leaves hidden records out and the share
    # of rich text past 500 characters is a guess: the estimate is of the right order, not exact.
    assert expected / 2 <= spent <= 2 * expected, (expected, spent)
    assert _ledger(database_url) == [("leads", spent)]

    second = _sync(simulator, database_url)
    assert second.success
    assert sum(credits for _, credits in _ledger(database_url)) == simulator.control.stats()["total_credits"]
    assert _materialization(second)["zoho/credits_spent_24h"] == spent


def test_credits_spent_in_the_last_24_hours_count_against_the_budget(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _expected_credits(simulator)
    engine = make_engine(database_url)
    credit_ledger.record(engine, "earlier-run", "contacts", 4_700)
    credit_ledger.record(engine, "older-run", "deals", 90_000)
    with engine.begin() as conn:  # this one is older than Zoho's rolling window: it no longer counts
        conn.exec_driver_sql(
            "UPDATE zoho_dagster.credit_ledger SET at = now() - interval '25 hours' "
            "WHERE run_id = 'older-run'"
        )
    monkeypatch.setenv(BUDGET, str(4_700 + expected - 1))
    result = _sync(simulator, database_url)

    assert not result.success
    assert _failure(result) == (
        f"This run of leads would spend about {expected:,} Zoho API credits but only {expected - 1:,} of the "
        f"daily budget of {4_700 + expected - 1:,} are left (4,700 spent in the last 24 hours); raise "
        f"{BUDGET}, wait until earlier runs leave Zoho's rolling 24-hour window, or sync a narrower window "
        "(fewer partitions)."
    )

    # The refused run spent 2 credits (fields metadata and count), now in the ledger too.
    assert sum(credits for stream_, credits in _ledger(database_url) if stream_ == "leads") == 2
    monkeypatch.setenv(BUDGET, str(4_700 + 2 + expected))
    assert _sync(simulator, database_url).success


def test_without_a_budget_nothing_is_counted(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BUDGET, raising=False)
    simulator.control.reset_stats()
    result = _sync(simulator, database_url)

    assert result.success
    assert "GET /crm/v6/Leads/actions/count" not in simulator.control.stats()["by_endpoint"]
    assert "zoho/credits_estimated" not in _materialization(result)
    assert _ledger(database_url) == [("leads", simulator.control.stats()["total_credits"])]


@pytest.mark.parametrize("value", ["0", "-5", "5k", "1.5"])
def test_a_bad_budget_is_refused_in_one_sentence(value: str) -> None:
    with pytest.raises(ZohoConfigError) as refused:
        load_settings({BUDGET: value})
    assert str(refused.value) == (
        f"{BUDGET} is {value!r}; set it to a whole number at least 1 (the Zoho API credits the syncs may "
        "spend in any 24 hours), or unset it for no budget."
    )
    assert load_settings({BUDGET: " 5000 "}).daily_credit_budget == 5000
    assert load_settings({}).daily_credit_budget is None

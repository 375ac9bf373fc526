"""Merging in rounds while the window is read gives the table and the counts of one merge at the end."""

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from zoho_dagster.postgres import writer
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.tables import TableName
from zoho_dagster.postgres.writer import write_stream
from zoho_dagster.record_stream import RecordStream
from zoho_dagster_tests.postgres.test_writer import FIELDS, lead, rows

ONE_MERGE = TableName("zoho_crm", "leads")
IN_ROUNDS = TableName("zoho_crm", "leads_rounds")


def stream(records: list[dict], deletions: list[dict] | None = None) -> RecordStream:
    pages = [records[i : i + 2] for i in range(0, len(records), 2)]
    deleted = (lambda: iter([deletions])) if deletions is not None else None
    return RecordStream("leads", "Leads", "incremental", FIELDS, pages, deletions=deleted)


def without_sync_time(table: dict[str, dict]) -> dict[str, dict]:
    return {rid: {k: v for k, v in row.items() if k != "_zoho_synced_at"} for rid, row in table.items()}


def test_rounds_end_with_the_table_and_counts_of_one_merge(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url)
    stored_before = [
        lead("1", "2026-03-05T00:00:00Z", Seats=5),
        lead("2", "2026-03-01T00:00:00Z", Seats=1),
        lead("3", "2026-03-01T00:00:00Z", Seats=1),
    ]
    deletions = [{"id": "3", "deleted_time": "2026-03-03T00:00:00Z", "type": "recycle"}]
    window = [
        lead("2", "2026-03-02T00:00:00Z", Seats=2),  # round 1: an update of a stored record ...
        lead("4", "2026-03-07T00:00:00Z", Seats=7),  # ... and a new record, newest version first
        lead("1", "2026-03-01T00:00:00Z", Seats=0),  # older than the stored version: no change
        lead("5", "2026-03-02T00:00:00Z", Seats=2),  # round 2: a new record ...
        lead("2", "2026-03-08T00:00:00Z", Seats=8),  # ... the stored one again, newer
        lead("4", "2026-03-06T00:00:00Z", Seats=6),  # ... the new one again, older: no change
        lead("5", "2026-03-02T00:00:00Z", Seats=3),  # round 3: the same instant again: the later one wins
        lead("3", "2026-03-02T00:00:00Z", Seats=2),  # older than its deletion: the mark stays
    ]
    results = {}
    for target, per_round in ((ONE_MERGE, 10**9), (IN_ROUNDS, 3)):
        monkeypatch.setattr(writer, "MERGE_EVERY", per_round)
        write_stream(engine, stream(stored_before), target)
        results[target] = write_stream(engine, stream(window, deletions), target)

    one, rounds = results[ONE_MERGE], results[IN_ROUNDS]
    assert (rounds.received, rounds.inserted, rounds.updated, rounds.deletions_marked) == (
        one.received,
        one.inserted,
        one.updated,
        one.deletions_marked,
    )
    assert (one.inserted, one.updated) == (2, 2)  # 4 and 5 new; 2 and 3 updated, each once
    assert without_sync_time(rows(database_url, IN_ROUNDS)) == without_sync_time(
        rows(database_url, ONE_MERGE)
    )
    stored = rows(database_url, IN_ROUNDS)
    assert {rid: row["seats"] for rid, row in stored.items()} == {"1": 5, "2": 8, "3": 2, "4": 7, "5": 3}
    assert stored["3"]["_zoho_deleted_at"] == datetime(2026, 3, 3, tzinfo=timezone.utc)


def test_a_failure_after_some_rounds_leaves_the_table_as_it_was(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(database_url)
    write_stream(engine, stream([lead("1", "2026-03-01T00:00:00Z", Seats=1)]), IN_ROUNDS)
    before = rows(database_url, IN_ROUNDS)
    monkeypatch.setattr(writer, "MERGE_EVERY", 100)

    def pages():
        # 450 records, so that four rounds are merged before the failure reaches the writer.
        for page in range(3):
            yield [lead(str(i), "2026-03-09T00:00:00Z", Seats=9) for i in range(page * 150, page * 150 + 150)]
        raise ConnectionError("Zoho went away on page 4")

    broken = RecordStream("leads", "Leads", "incremental", FIELDS, pages())
    with pytest.raises(ConnectionError, match="page 4"):
        write_stream(engine, broken, IN_ROUNDS)
    assert rows(database_url, IN_ROUNDS) == before
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM zoho_crm.leads_rounds")).scalar_one() == 1

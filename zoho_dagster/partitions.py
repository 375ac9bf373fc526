"""Daily partitions of ``Modified_Time`` (UTC) from the anchor date to today, today being the open partition.

Why daily and UTC: a day is small enough to re-run cheaply and large enough that a year is only 365 keys;
UTC because Zoho renders each user's offset and the table stores instants. ``end_offset=1`` makes today's
partition exist while it is still filling up, so a schedule can keep it fresh.
"""

from collections.abc import Mapping
from datetime import date, datetime, timezone

import dagster as dg

from zoho_dagster.settings import load_settings


def anchor_date(environ: Mapping[str, str] | None = None) -> date:
    """``ZOHO_CRM_ANCHOR_DATE`` (or the ``ZOHO_CRM`` connection's ``inputs.anchor_date``), else a year ago.

    Read through the settings so that the same sentence reports a bad value wherever it is read.
    """
    return load_settings(environ).anchor_date


def daily_partitions(start: date | None = None) -> dg.DailyPartitionsDefinition:
    """The partitions of every incremental stream: one per UTC day from ``start`` (default: the anchor)."""
    first = start or anchor_date()
    return dg.DailyPartitionsDefinition(start_date=first.isoformat(), timezone="UTC", end_offset=1)


def utc_window(window: dg.TimeWindow) -> tuple[datetime, datetime]:
    """A partition (or range) time window as ``[start, end)`` in UTC: the one form every layer below uses.

    The asset works it out once and hands it on in the ``RecordStream``; reads of a partition (``load_input``)
    use the same function.
    """
    return (
        datetime.fromtimestamp(window.start.timestamp(), tz=timezone.utc),
        datetime.fromtimestamp(window.end.timestamp(), tz=timezone.utc),
    )

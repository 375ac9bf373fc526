"""Daily partitions of ``Modified_Time`` (UTC) from the anchor date to today, today being the open partition.

Why daily and UTC: a day is small enough to re-run cheaply and large enough that a year is only 365 keys;
UTC because Zoho renders each user's offset and the table stores instants. ``end_offset=1`` makes today's
partition exist while it is still filling up, so a schedule can keep it fresh.

The partitions are built while the definitions load, so a bad ``ZOHO_CRM_ANCHOR_DATE`` must not stop the load
(the UI would show no asset at all): the partitions then start at the default anchor, a year ago, and the
resource's validation stops every run at its first step with the sentence naming the variable
(``zoho-dagster check`` prints it too).
"""

import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from zoho_dagster.client import ZohoConfigError
from zoho_dagster.settings import default_anchor, load_anchor_date

log = logging.getLogger(__name__)
_warned: set[str] = set()

RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
"""The run tags of a single-run backfill (``--partition-range A...B``): its first and last partition."""


def anchor_date(environ: Mapping[str, str] | None = None) -> date:
    """``ZOHO_CRM_ANCHOR_DATE`` (or the ``ZOHO_CRM`` connection's ``inputs.anchor_date``), else a year ago.

    Read through the settings so that the same sentence reports a bad value wherever it is read; a bad value
    raises (use :func:`partitions_anchor` where a load must go on).
    """
    return load_anchor_date(environ)


def partitions_anchor(environ: Mapping[str, str] | None = None) -> date:
    """The anchor to build partitions from while the definitions load: a bad value falls back to the default.

    The mistake is logged once here and reported where it can be fixed: at the first step of every run (the
    resource validates the anchor with the other settings) and by ``zoho-dagster check``.
    """
    try:
        return anchor_date(environ)
    except ZohoConfigError as error:
        fallback = default_anchor(date.today())
        text = str(error).rstrip(".")
        if text not in _warned:
            _warned.add(text)
            log.warning(
                "%s; until it is fixed, the partitions start at %s and every run stops at its first step.",
                text,
                fallback,
            )
        return fallback


def daily_partitions(start: date | None = None) -> dg.DailyPartitionsDefinition:
    """The partitions of every incremental stream: one per UTC day from ``start`` (default: the anchor)."""
    first = start or partitions_anchor()
    return dg.DailyPartitionsDefinition(start_date=first.isoformat(), timezone="UTC", end_offset=1)


def reversed_range_failure(start: datetime, end: datetime) -> dg.Failure:
    """The one sentence for a backwards ``--partition-range B...A``, giving the range the right way round.

    Dagster 1.13 runs such a range: the asset sees the window ``[B, A + 1 day)``, which ends before it starts,
    and the run would read nothing and record a materialization without a partition. The days are worked out
    back from that window (``B`` is its start, ``A`` the day before its end).
    """
    first, last = start.date().isoformat(), (end - timedelta(days=1)).date().isoformat()
    return dg.Failure(
        description=(
            f"The partition range {first}...{last} runs backwards (its start is after its end); give the "
            f"earlier day first: --partition-range {last}...{first} (in Python, the run tags {RANGE_TAGS[0]}="
            f"{last} and {RANGE_TAGS[1]}={first})."
        ),
        metadata={"fix": f"--partition-range {last}...{first}"},
        allow_retries=False,
    )


def utc_window(window: dg.TimeWindow) -> tuple[datetime, datetime]:
    """A partition (or range) time window as ``[start, end)`` in UTC: the one form every layer below uses.

    The asset works it out once and hands it on in the ``RecordStream``; reads of a partition (``load_input``)
    use the same function. A window that ends before it starts (a reversed partition range) is refused here,
    before any call to Zoho.
    """
    start = datetime.fromtimestamp(window.start.timestamp(), tz=timezone.utc)
    end = datetime.fromtimestamp(window.end.timestamp(), tz=timezone.utc)
    if end <= start:
        raise reversed_range_failure(start, end)
    return start, end

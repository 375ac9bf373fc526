"""What the package's per-stream maintenance ops share: the formula refresh (``formula_refresh.py``) and the
notification run (``notifications/sensor.py``) each work through a chosen set of record streams, report
each stream as an observation of its asset, sum the streams' figures into the op's output metadata, and
write to the tables' database as the IO manager finds it.
One copy, so the two report alike and refuse an unknown stream name in the same sentence."""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa

from zoho_dagster.postgres.database import resolve_database_url
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.replication import ReplicatedStream
from zoho_dagster.streams import unknown_streams_sentence


def tables_engine(io_manager: PostgresIOManager, announce: Any = None) -> sa.Engine:
    """The engine of the synced tables, as the IO manager finds their database (``announce`` says which,
    when the embedded server is started for it)."""
    return make_engine(resolve_database_url(io_manager.database_url, announce))


def chosen_streams(
    streams: list[ReplicatedStream], names: Sequence[str], config_name: str
) -> list[ReplicatedStream]:
    """``streams`` restricted to ``names`` (all when empty); an unknown name fails in one sentence naming
    ``config_name`` (e.g. "the formula refresh's config"), not retried: a rerun would fail the same way."""
    known = [stream.spec.name for stream in streams]
    unknown = [name for name in names if name not in known]
    if unknown:
        sentence = unknown_streams_sentence(unknown, known, config_name)
        raise dg.Failure(description=sentence, allow_retries=False)
    return [stream for stream in streams if not names or stream.spec.name in names]


def observe_stream(
    context: dg.OpExecutionContext,
    asset_key: dg.AssetKey,
    marker: str,
    metadata: Mapping[str, Any],
    totals: dict[str, int],
) -> None:
    """Record what the op did to one stream as an observation of its asset (``marker`` set to true says
    which op), and add its figures to ``totals`` (the op's output metadata, every key in ``metadata``)."""
    context.log_event(dg.AssetObservation(asset_key=asset_key, metadata={marker: True, **metadata}))
    for name in totals:
        totals[name] += int(metadata[name])

"""The one ``Definitions`` object that ``dagster dev``, ``dagster asset materialize`` and the demo load.

Loading must work with no secret set (the UI, ``definitions validate`` and CI load it on machines without Zoho
credentials): the resource reads its configuration lazily through ``EnvVar``s and the IO manager resolves its
database only when a run writes, so loading never starts the embedded Postgres either. The streams and their
tables come from the replication file (``ZOHO_DAGSTER_REPLICATION``; unset: the whole catalog into
``zoho_crm.<stream>``), which only reads files, so loading never calls Zoho.
"""

import dagster as dg

from zoho_dagster.builder import build_definitions
from zoho_dagster.environment import batch_dagster_events

EXECUTOR = dg.in_process_executor
"""This project's own choice, beside the package's definitions (which set no executor, so that they merge
into any project): every run it launches, ``dagster asset materialize --select leads`` included, runs its
steps in the run's process. A step in a process of its own re-imports Dagster and these definitions: the
seed command took 30 s that way against 9 s in-process on a 2-core machine (a stream and its two check
steps), while the work is bound by Zoho's concurrency, which one process already uses fully (builder.py)."""

batch_dagster_events()
defs = dg.Definitions.merge(build_definitions(), dg.Definitions(executor=EXECUTOR))

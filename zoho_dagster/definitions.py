"""The one ``Definitions`` object that ``dagster dev``, ``dagster asset materialize`` and the demo load.

Loading must work with no secret set (the UI, ``definitions validate`` and CI load it on machines without Zoho
credentials): the resource reads its configuration lazily through ``EnvVar``s and the IO manager resolves its
database only when a run writes, so loading never starts the embedded Postgres either. The streams and their
tables come from the replication file (``ZOHO_DAGSTER_REPLICATION``; unset: the whole catalog into
``zoho_crm.<stream>``), which only reads files, so loading never calls Zoho.
"""

from zoho_dagster.builder import build_definitions
from zoho_dagster.environment import batch_dagster_events

batch_dagster_events()
defs = build_definitions()

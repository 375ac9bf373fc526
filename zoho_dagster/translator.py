"""How a replicated stream becomes a Dagster asset spec: key, group, kinds, description, metadata, freshness
policy and automation condition.

Modelled on dagster-fivetran's ``DagsterFivetranTranslator``: the assets, the checks and the automation all
ask the translator for a stream's spec, so a subclass changes the asset key (e.g. a ``zoho`` prefix), the
group, owners or tags everywhere at once::

    class MyTranslator(DagsterZohoTranslator):
        def get_asset_spec(self, stream: ReplicatedStream) -> dg.AssetSpec:
            spec = super().get_asset_spec(stream)
            return spec.replace_attributes(key=spec.key.with_prefix("zoho"), owners=["team:data"])

    defs = build_definitions(translator=MyTranslator())

Every spec carries Dagster's own freshness policy (:meth:`DagsterZohoTranslator.get_freshness_policy`), from
``ZOHO_DAGSTER_FRESHNESS_MINUTES`` unless given, and an optional ``AutomationCondition``
(:meth:`DagsterZohoTranslator.get_automation_condition`, none by default: the schedule and the change sensor
of :mod:`zoho_dagster.automation` keep the copy fresh either way).

What stays with the builders, because the sync's correctness depends on it: partitions, the single-run
backfill policy, the pool, the IO manager key, and the ``dagster/table_name`` metadata that tells the IO
manager where to write (change the table through the replication file's ``object``).
"""

from datetime import timedelta

import dagster as dg

# Not exported by `dagster` 1.13; Dagster's own libraries import it from here (docs/dagster.md §3).
from dagster._core.definitions.metadata import TableMetadataSet

from zoho_dagster.environment import freshness_minutes_setting
from zoho_dagster.replication import ReplicatedStream

GROUP = "zoho_crm"
KINDS = frozenset({"zoho_crm", "postgres"})
TABLE_NAME_KEY = "dagster/table_name"
"""Definition metadata naming the target ``schema.table`` (Dagster's own key, written by
``TableMetadataSet(table_name=...)``; the UI shows it)."""
CURSOR_FIELD_KEY = "zoho_dagster/cursor_field"
RUN_ALLOWANCE = timedelta(minutes=5)
"""Time a scheduled run may take on top of the freshness interval before the copy counts as late."""


def freshness_policy(minutes: int) -> dg.FreshnessPolicy:
    """Dagster's freshness policy for a stream synced every ``minutes``.

    WARN once the last sync is older than one interval plus :data:`RUN_ALLOWANCE` (a scheduled sync is late:
    the same age at which the ``open_partition_fresh`` check fails), FAIL past two intervals plus the
    allowance (a second sync missed). Dagster's daemon evaluates it every 30 s against the asset's latest
    materialization, of any partition.
    """
    interval = timedelta(minutes=minutes)
    return dg.FreshnessPolicy.time_window(
        fail_window=2 * interval + RUN_ALLOWANCE, warn_window=interval + RUN_ALLOWANCE
    )


class DagsterZohoTranslator:
    """The default mapping of a stream to its asset spec; subclass and override :meth:`get_asset_spec` (or
    the narrower getters).

    ``freshness_minutes`` sets the freshness policy's interval (default ``ZOHO_DAGSTER_FRESHNESS_MINUTES``,
    read when a spec is made); ``automation_condition`` is put on every stream's spec (default none).
    """

    freshness_minutes: int | None = None
    automation_condition: dg.AutomationCondition | None = None

    def __init__(
        self,
        freshness_minutes: int | None = None,
        automation_condition: dg.AutomationCondition | None = None,
    ) -> None:
        self.freshness_minutes = freshness_minutes
        self.automation_condition = automation_condition

    def get_asset_spec(self, stream: ReplicatedStream) -> dg.AssetSpec:
        spec, table = stream.spec, stream.target
        source = f"Zoho CRM module {spec.module}" if spec.module else f"Zoho CRM {spec.name}"
        how = "incremental on Modified_Time, daily partitions (UTC)" if spec.incremental else "full refresh"
        metadata: dict[str, str] = dict(TableMetadataSet(table_name=str(table)))
        if spec.cursor_field:
            metadata[CURSOR_FIELD_KEY] = spec.cursor_field
        return dg.AssetSpec(
            key=dg.AssetKey(spec.name),
            group_name=GROUP,
            kinds=set(KINDS),
            description=f"{spec.description}: {source} → {table} ({how}).",
            metadata=metadata,
            freshness_policy=self.get_freshness_policy(stream),
            automation_condition=self.get_automation_condition(stream),
        )

    def get_asset_key(self, stream: ReplicatedStream) -> dg.AssetKey:
        """The key of ``stream``'s asset (checks and automation select assets by it)."""
        return self.get_asset_spec(stream).key

    def get_freshness_policy(self, stream: ReplicatedStream) -> dg.FreshnessPolicy | None:
        """Dagster's freshness policy of ``stream`` (:func:`freshness_policy`); ``None`` leaves it without."""
        minutes = self.freshness_minutes
        return freshness_policy(minutes if minutes is not None else freshness_minutes_setting())

    def get_automation_condition(self, stream: ReplicatedStream) -> dg.AutomationCondition | None:
        """The declarative automation of ``stream``'s asset: none unless given to the translator."""
        return self.automation_condition

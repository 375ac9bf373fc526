"""How a replicated stream becomes a Dagster asset spec: key, group, kinds, description, metadata.

Modelled on dagster-fivetran's ``DagsterFivetranTranslator``: the assets, the checks and the automation all
ask the translator for a stream's spec, so a subclass changes the asset key (e.g. a ``zoho`` prefix), the
group, owners or tags everywhere at once::

    class MyTranslator(DagsterZohoTranslator):
        def get_asset_spec(self, stream: ReplicatedStream) -> dg.AssetSpec:
            spec = super().get_asset_spec(stream)
            return spec.replace_attributes(key=spec.key.with_prefix("zoho"), owners=["team:data"])

    defs = build_definitions(translator=MyTranslator())

What stays with the builders, because the sync's correctness depends on it: partitions, the single-run
backfill policy, the pool, the IO manager key, and the ``dagster/table_name`` metadata that tells the IO
manager where to write (change the table through the replication file's ``object``).
"""

import dagster as dg

from zoho_dagster.replication import ReplicatedStream

GROUP = "zoho_crm"
KINDS = frozenset({"zoho_crm", "postgres"})
TABLE_NAME_KEY = "dagster/table_name"
"""Definition metadata naming the target ``schema.table`` (Dagster's own key; the UI shows it)."""
CURSOR_FIELD_KEY = "zoho_dagster/cursor_field"


class DagsterZohoTranslator:
    """The default mapping of a stream to its asset spec; subclass and override :meth:`get_asset_spec`."""

    def get_asset_spec(self, stream: ReplicatedStream) -> dg.AssetSpec:
        spec, table = stream.spec, stream.target
        source = f"Zoho CRM module {spec.module}" if spec.module else f"Zoho CRM {spec.name}"
        how = "incremental on Modified_Time, daily partitions (UTC)" if spec.incremental else "full refresh"
        metadata: dict[str, str] = {TABLE_NAME_KEY: str(table)}
        if spec.cursor_field:
            metadata[CURSOR_FIELD_KEY] = spec.cursor_field
        return dg.AssetSpec(
            key=dg.AssetKey(spec.name),
            group_name=GROUP,
            kinds=set(KINDS),
            description=f"{spec.description}: {source} → {table} ({how}).",
            metadata=metadata,
        )

    def get_asset_key(self, stream: ReplicatedStream) -> dg.AssetKey:
        """The key of ``stream``'s asset (checks and automation select assets by it)."""
        return self.get_asset_spec(stream).key

"""Which Zoho reads fill the metadata tables, and which of our tables each module's fields belong to.

Why here, above ``postgres/``: the table a module's records land in follows the stream naming rule and the
replication file (:mod:`zoho_dagster.discovery`, :mod:`zoho_dagster.replication`), which the Postgres layer
must not know. The reads themselves stay lazy: :func:`org_metadata_source` only wires them, and the IO manager
calls them inside the ``modules`` stream's transaction (:mod:`zoho_dagster.postgres.metadata_tables`).

Fields are read (``/settings/fields``, one call and one credit each, docs/zoho-crm-api.md §3.3, §6.1) for
every module that can be a stream (standard and custom record modules the API serves) and for the subform
modules, whose fields are the columns of the line-item child tables. Linking modules are left out: their
tables' columns are fixed (docs/design.md, "Tables"), so their fields would name no column. With ``/org``,
roles, profiles and (with multi-currency on) currencies, a refresh costs ``modules + 3`` or ``modules + 4``
calls and as many credits.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from zoho_dagster.client import LIST_UNSUPPORTED_TYPES, ZohoClient
from zoho_dagster.client import org_metadata as om
from zoho_dagster.discovery import module_stream_specs, modules_from_zoho, snake_case
from zoho_dagster.postgres.children import child_table_name
from zoho_dagster.postgres.metadata_tables import ModuleFields, OrgMetadataSource
from zoho_dagster.postgres.tables import DEFAULT_SCHEMA, TableName
from zoho_dagster.replication import ReplicatedStream
from zoho_dagster.streams import CATALOG

SUBFORM = "subform"


def child_table(parent: TableName, field_api_name: str) -> TableName:
    """The child table of a parent's subform or lookup-link field, named as the sync names it."""
    return child_table_name(parent, snake_case(field_api_name))


def record_tables(
    modules: Sequence[Mapping[str, Any]], replicated: Sequence[ReplicatedStream]
) -> dict[str, TableName]:
    """Module API name → the table of its records, for every module that can be a stream.

    A replicated stream's target wins; any other module gets ``zoho_crm.<stream>``, its stream named as
    discovery names it (``Events`` is ``meetings``, ``Sales_Orders`` is ``sales_orders``).
    """
    targets = {stream.spec.module: stream.target for stream in replicated if stream.spec.module}
    names = {spec.module: spec.name for spec in CATALOG if spec.module}
    names.update(
        (spec.module, spec.name) for spec in module_stream_specs(modules_from_zoho(modules)) if spec.module
    )
    recordable = {m.api_name for m in modules_from_zoho(modules) if m.is_record_stream}
    return {
        module: targets.get(module) or TableName(DEFAULT_SCHEMA, name)
        for module, name in names.items()
        if module in recordable
    }


def _subform_modules(modules: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        str(m["api_name"])
        for m in modules
        if m.get("api_name") and m.get("generated_type") == SUBFORM and m.get("api_supported")
    ]


def module_fields(
    client: ZohoClient,
    modules: Sequence[Mapping[str, Any]],
    replicated: Sequence[ReplicatedStream],
    after_call: Callable[[], None] = lambda: None,
) -> Iterator[ModuleFields]:
    """The fields of every record module, then of every subform module, one ``/settings/fields`` call each.

    A subform module's table is the child table of the parent field that names it (``associated_module``),
    found in the parents' fields read just before; a subform whose parent is no stream has no table.
    """
    tables = record_tables(modules, replicated)
    subform_tables: dict[str, TableName] = {}
    for module, table in tables.items():
        fields = client.list_fields(module)
        after_call()
        children: dict[str, TableName] = {}
        for meta in fields:
            api_name = str(meta.get("api_name") or "")
            if api_name and meta.get("data_type") in LIST_UNSUPPORTED_TYPES:
                children[api_name] = child_table(table, api_name)
                associated = (meta.get("associated_module") or {}).get("api_name")
                if meta.get("data_type") == SUBFORM and associated:
                    subform_tables.setdefault(str(associated), children[api_name])
        yield ModuleFields(module, fields, table, children)
    for module in _subform_modules(modules):
        fields = client.list_fields(module)
        after_call()
        yield ModuleFields(module, fields, subform_tables.get(module))


def org_metadata_source(
    client: ZohoClient,
    modules: Sequence[Mapping[str, Any]],
    replicated: Sequence[ReplicatedStream],
    after_call: Callable[[], None] = lambda: None,
) -> OrgMetadataSource:
    """The lazy reads behind the metadata tables; ``after_call`` runs after each (the asset's call meter)."""

    def counted(read: Callable[[], Any]) -> Any:
        value = read()
        after_call()
        return value

    return OrgMetadataSource(
        module_fields=lambda: module_fields(client, modules, replicated, after_call),
        org=lambda: counted(client.org),
        roles=lambda: counted(lambda: om.roles(client)),
        profiles=lambda: counted(lambda: om.profiles(client)),
        currencies=lambda org: counted(lambda: om.currencies(client, org)),
    )

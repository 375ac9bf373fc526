"""``ZohoCRMComponent``: the package as a Dagster component, configured in YAML.

``dg scaffold defs zoho_dagster.ZohoCRMComponent zoho_crm`` writes ``defs/zoho_crm/defs.yaml`` and a
``replication.yaml`` in Sling's shape (:mod:`zoho_dagster.replication`) beside it. The component builds what
:func:`~zoho_dagster.builder.build_definitions` builds (that function stays the Python API): one asset per
replicated stream with its checks, the sync job, the schedules and the change sensor.

Its attributes:

- ``replication``: the replication file, relative to the component's folder, or the replication inline as a
  mapping; unset: ``$ZOHO_DAGSTER_REPLICATION``, else every catalog stream.
- ``zoho_crm``: the connection, the fields of :class:`~zoho_dagster.resource.ZohoCRMResource`. A value
  written as exactly ``{{ env.NAME }}`` becomes ``dg.EnvVar("NAME")`` when ``NAME`` is set (and is left out
  when it is not), so secrets are read when a run starts and the UI shows the variable's name, never its
  value, as with :meth:`~zoho_dagster.resource.ZohoCRMResource.from_env`. Fields left out are read from the
  ``ZOHO_CRM_*`` variables when a run starts, as always.
- ``database_url``: the Postgres of the synced tables and of the shared token cache (same ``{{ env.NAME }}``
  rule); unset: ``$ZOHO_DAGSTER_DATABASE_URL``, else the embedded server.
- ``translation``: ``key_prefix``, ``group_name``, ``owners``, ``tags``, ``kinds``, ``automation_condition``
  (e.g. ``"{{ dg.AutomationCondition.on_cron('*/30 * * * *') }}"``) and ``freshness_minutes`` (the
  schedule's interval, the freshness check's limit and Dagster's freshness policy; default
  ``$ZOHO_DAGSTER_FRESHNESS_MINUTES``).
- ``defs_state``: where the component keeps its state (below); default the local filesystem, never
  refreshed while definitions load.

The state is the org's modules, as ``zoho-dagster discover --write`` records them: ``dg utils
refresh-defs-state`` asks Zoho (one ``/settings/modules`` call) and stores the answer; loading the
definitions reads it and never calls Zoho (Dagster loads definitions in every process: webserver, daemon,
each run). The replication's ``'*'`` then takes every record module of the org. Without state (not refreshed
yet), the discovery file is read as before (``$ZOHO_DAGSTER_DISCOVERY``, else ``./zoho_crm_discovery.yaml``),
and without that the catalog and the standard modules named explicitly are the streams.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from textwrap import dedent
from typing import Annotated, Any, get_args

import dagster as dg
import yaml
from dagster.components import (
    DefsStateConfig,
    DefsStateConfigArgs,
    ResolutionContext,
    ResolvedDefsStateConfig,
    Resolver,
    Scaffolder,
    ScaffoldRequest,
    scaffold_component,
    scaffold_with,
)
from dagster_shared.serdes.objects.models.defs_state_info import DefsStateManagementType
from pydantic import Field, create_model

from zoho_dagster.builder import build_definitions
from zoho_dagster.discovery import module_stream_specs, modules_from_zoho, read_discovery, write_discovery
from zoho_dagster.environment import REPLICATION_VARIABLE, replication_file
from zoho_dagster.postgres.io_manager import PostgresIOManager
from zoho_dagster.replication import (
    ReplicatedStream,
    ReplicationError,
    default_replication,
    parse_replication,
)
from zoho_dagster.resource import ZohoCRMResource
from zoho_dagster.translator import DagsterZohoTranslator

STATE_KEY = "ZohoCRMComponent"
"""The default key of the component's state (its folder under the defs module's ``.local_defs_state``); a
project with two Zoho orgs gives the second component ``defs_state: {key: ...}`` of its own."""

_ENV_REFERENCE = re.compile(r"""^\s*\{\{\s*env(?:\.(\w+)|\(\s*['"](\w+)['"]\s*\))\s*\}\}\s*$""")


def _env_reference(value: Any) -> str | None:
    """``NAME`` when ``value`` is exactly ``{{ env.NAME }}`` (or ``{{ env('NAME') }}``), else ``None``."""
    if not isinstance(value, str):
        return None
    match = _ENV_REFERENCE.match(value)
    return (match.group(1) or match.group(2)) if match else None


def _env_var_or_value(context: ResolutionContext, value: Any) -> Any:
    """A string field's value: ``dg.EnvVar`` for an ``{{ env.NAME }}`` whose variable is set, ``None`` when
    it is unset, else the value with its templates rendered."""
    name = _env_reference(value)
    if name is not None:
        return dg.EnvVar(name) if (dg.EnvVar(name).get_value() or "").strip() else None
    return context.resolve_value(value)


def _string_field(annotation: Any) -> bool:
    return annotation is str or str in get_args(annotation)


_RESOURCE_FIELDS = dict(ZohoCRMResource.model_fields)

ZohoCRMConnectionModel = create_model(
    "ZohoCRMConnectionModel",
    __base__=dg.Model,
    **{
        name: (
            str | None if _string_field(field.annotation) else str | int | float | bool | None,
            Field(default=None, description=field.description),
        )
        for name, field in _RESOURCE_FIELDS.items()
    },
)
"""The YAML shape of ``zoho_crm``: every field of :class:`ZohoCRMResource` (numbers and switches also as
text, for templates)."""


def resolve_zoho_crm(context: ResolutionContext, model: Any) -> ZohoCRMResource | None:
    """The resource from the YAML mapping; string fields keep ``{{ env.NAME }}`` as ``dg.EnvVar``."""
    if model is None:
        return None
    if isinstance(model, str):  # the whole mapping as one template
        model = ZohoCRMConnectionModel(**(context.resolve_value(model) or {}))
    fields: dict[str, Any] = {}
    raw = model.model_dump(exclude_unset=True)
    for name, value in raw.items():
        if value is None:
            continue
        if _string_field(_RESOURCE_FIELDS[name].annotation):
            resolved = _env_var_or_value(context.at_path(name), value)
        else:
            resolved = context.at_path(name).resolve_value(value)
        if resolved is not None and resolved != "":
            fields[name] = resolved
    return ZohoCRMResource(**fields)


def resolve_database_url(context: ResolutionContext, value: Any) -> str | None:
    return _env_var_or_value(context, value) if value is not None else None


@dataclass
class ZohoTranslation(dg.Resolvable):
    """The ``translation`` block: how every stream's asset spec is changed from the default translator's."""

    key_prefix: Annotated[
        str | list[str] | None,
        Resolver.default(description="Prefix of every asset key, e.g. zoho (default: none, `leads`)."),
    ] = None
    group_name: Annotated[
        str | None, Resolver.default(description="Asset group (default zoho_crm).")
    ] = None
    owners: Annotated[
        list[str] | None, Resolver.default(description="Owners, e.g. [team:data, ana@example.com].")
    ] = None
    tags: Annotated[
        dict[str, str] | None, Resolver.default(description="Tags added to every asset.")
    ] = None
    kinds: Annotated[
        list[str] | None, Resolver.default(description="Kinds instead of zoho_crm and postgres.")
    ] = None
    automation_condition: Annotated[
        dg.AutomationCondition | None,
        Resolver.default(
            model_field_type=str | None,
            description="Declarative automation for every stream, e.g. "
            "\"{{ dg.AutomationCondition.on_cron('*/30 * * * *') }}\" (default: none; the schedule and "
            "the change sensor keep the copy fresh).",
        ),
    ] = None
    freshness_minutes: Annotated[
        int | None,
        Resolver.default(
            description="Minutes between syncs: the schedule's interval, the freshness check's limit and "
            "Dagster's freshness policy (default $ZOHO_DAGSTER_FRESHNESS_MINUTES, else 60).",
        ),
    ] = None


class TranslationTranslator(DagsterZohoTranslator):
    """The default translator with a component's ``translation`` block applied to every spec."""

    def __init__(self, translation: ZohoTranslation) -> None:
        super().__init__(translation.freshness_minutes, translation.automation_condition)
        self.translation = translation

    def get_asset_spec(self, stream: ReplicatedStream) -> dg.AssetSpec:
        spec = super().get_asset_spec(stream)
        change = self.translation
        replaced: dict[str, Any] = {}
        if change.key_prefix:
            replaced["key"] = spec.key.with_prefix(change.key_prefix)
        if change.group_name:
            replaced["group_name"] = change.group_name
        if change.owners is not None:
            replaced["owners"] = change.owners
        if change.kinds is not None:
            replaced["kinds"] = set(change.kinds)
        spec = spec.replace_attributes(**replaced) if replaced else spec
        return spec.merge_attributes(tags=change.tags) if change.tags else spec


class ZohoCRMComponentScaffolder(Scaffolder):
    """Writes ``defs.yaml`` (every attribute, commented) and a ``replication.yaml`` in Sling's shape."""

    def scaffold(self, request: ScaffoldRequest) -> None:
        if request.scaffold_format == "python":
            scaffold_component(request, {"replication": "replication.yaml"})
        else:
            (request.target_path / "defs.yaml").write_text(
                SCAFFOLD_DEFS_YAML.format(type_name=request.type_name), encoding="utf-8"
            )
        (request.target_path / "replication.yaml").write_text(SCAFFOLD_REPLICATION_YAML, encoding="utf-8")


SCAFFOLD_DEFS_YAML = dedent(
    """\
    type: {type_name}

    attributes:
      # Which streams go into which tables: Sling's replication file, beside this one.
      replication: replication.yaml

      # The Zoho CRM connection (docs: README, "Real Zoho, per region"). A value written as exactly
      # {{{{ env.NAME }}}} is read when a run starts and shown by name only; unset variables are left out.
      zoho_crm:
        client_id: "{{{{ env.ZOHO_CRM_CLIENT_ID }}}}"
        client_secret: "{{{{ env.ZOHO_CRM_CLIENT_SECRET }}}}"
        soid: "{{{{ env.ZOHO_CRM_SOID }}}}"
        refresh_token: "{{{{ env.ZOHO_CRM_REFRESH_TOKEN }}}}"
        region: "{{{{ env.ZOHO_CRM_REGION }}}}"
        accounts_url: "{{{{ env.ZOHO_CRM_ACCOUNTS_URL }}}}"
        api_domain: "{{{{ env.ZOHO_CRM_API_DOMAIN }}}}"

      # The Postgres of the synced tables (unset: the embedded server).
      database_url: "{{{{ env.ZOHO_DAGSTER_DATABASE_URL }}}}"

      # How the streams appear in Dagster; every key is optional.
      translation:
        group_name: zoho_crm
        # key_prefix: zoho                     # assets zoho/leads, ... (default: leads, ...)
        # owners: ["team:data"]
        # tags: {{source: zoho}}
        # automation_condition: "{{{{ dg.AutomationCondition.on_cron('*/30 * * * *') }}}}"
        # freshness_minutes: 60                # default $ZOHO_DAGSTER_FRESHNESS_MINUTES, else 60

    requirements:
      env:
        - ZOHO_CRM_CLIENT_ID
        - ZOHO_CRM_CLIENT_SECRET
        - ZOHO_CRM_SOID
        - ZOHO_CRM_REFRESH_TOKEN
        - ZOHO_CRM_REGION
        - ZOHO_CRM_ACCOUNTS_URL
        - ZOHO_CRM_API_DOMAIN
        - ZOHO_DAGSTER_DATABASE_URL
    """
)

SCAFFOLD_REPLICATION_YAML = dedent(
    """\
    # Sling's replication shape (README, "Choosing streams and tables"). '*' is every catalog stream plus
    # the org's other record modules once `dg utils refresh-defs-state` has discovered them.
    source: ZOHO_CRM
    target: POSTGRES

    defaults:
      mode: incremental
      object: zoho_crm.{stream_name}

    streams:
      '*':
    """
)


def _default_state() -> DefsStateConfigArgs:
    """Local files (``.local_defs_state`` beside the defs), never refreshed while definitions load: only
    ``dg utils refresh-defs-state`` calls Zoho."""
    return DefsStateConfigArgs(management_type=DefsStateManagementType.LOCAL_FILESYSTEM, refresh_if_dev=False)


@scaffold_with(ZohoCRMComponentScaffolder)
@dataclass
class ZohoCRMComponent(dg.StateBackedComponent, dg.Resolvable):
    """A Postgres copy of a Zoho CRM organisation: one asset per replicated stream, with checks,
    schedules and a change sensor (zoho_dagster's module docstring lists the attributes)."""

    replication: Annotated[
        str | dict[str, Any] | None,
        Resolver.default(
            description="The replication file (Sling's shape), relative to this component's folder, or the "
            "replication itself as a mapping; unset: $ZOHO_DAGSTER_REPLICATION, else the whole catalog.",
        ),
    ] = None
    # Any, not ZohoCRMResource: Dagster derives a YAML model from a pydantic field type and refuses the
    # resource's constrained fields; the resolver returns a ZohoCRMResource (or None).
    zoho_crm: Annotated[
        Any,
        Resolver(
            resolve_zoho_crm,
            model_field_type=ZohoCRMConnectionModel | None,
            inject_before_resolve=False,  # the resolver sees {{ env.NAME }} itself
            description="The Zoho CRM connection (ZohoCRMResource's fields); {{ env.NAME }} becomes "
            "dg.EnvVar('NAME'). Unset fields come from the ZOHO_CRM_* variables.",
        ),
    ] = None
    database_url: Annotated[
        str | None,
        Resolver(
            resolve_database_url,
            model_field_type=str | None,
            inject_before_resolve=False,  # the resolver sees {{ env.NAME }} itself
            description="Postgres of the synced tables and the token cache; unset: "
            "$ZOHO_DAGSTER_DATABASE_URL, else the embedded server.",
        ),
    ] = None
    translation: Annotated[
        ZohoTranslation | None,
        Resolver.default(description="Key prefix, group, owners, tags, kinds, automation and freshness."),
    ] = None
    defs_state: ResolvedDefsStateConfig = field(default_factory=_default_state)

    @property
    def defs_state_config(self) -> DefsStateConfig:
        return DefsStateConfig.from_args(self.defs_state, default_key=STATE_KEY)

    def resource(self) -> ZohoCRMResource:
        """The ``zoho_crm`` resource: the YAML's fields, the database URL, the rest from the environment."""
        resource = self.zoho_crm if self.zoho_crm is not None else ZohoCRMResource.from_env()
        if self.database_url is not None and resource.database_url is None:
            resource = resource.model_copy(update={"database_url": self.database_url})
        return resource

    def translator(self) -> DagsterZohoTranslator:
        return TranslationTranslator(self.translation) if self.translation else DagsterZohoTranslator()

    def write_state_to_path(self, state_path: Path) -> None:
        """Discovery: the org's modules (one Zoho call), written where the component's state lives."""
        resource = self.resource().process_config_and_initialize()
        write_discovery(modules_from_zoho(resource.get_client().list_modules()), state_path)

    def streams(
        self, context: dg.ComponentLoadContext, state_path: Path | None
    ) -> tuple[list[ReplicatedStream], Path | None]:
        """The replicated streams and the replication file they come from (``None`` when inline or the
        default); ``'*'`` takes the modules of the state, else of the discovery file."""
        modules = read_discovery(state_path) if state_path is not None else None
        customs = module_stream_specs(modules) if modules is not None else None
        defs_file = context.path / "defs.yaml"
        if isinstance(self.replication, Mapping):
            text = yaml.safe_dump(dict(self.replication), sort_keys=False)
            return parse_replication(text, custom_streams=customs, origin=f"replication in {defs_file}"), None
        if self.replication:
            path = Path(self.replication)
            path = path if path.is_absolute() else context.path / path
            fix = f"fix `replication` in {defs_file} (a path relative to its folder)"
        else:
            path = replication_file()
            fix = f"fix {REPLICATION_VARIABLE} (or unset it to sync the whole catalog)"
            if path is None:
                return default_replication(), None
        if not path.is_file():
            raise ReplicationError(f"The replication file {path} does not exist; {fix}.")
        text = path.read_text(encoding="utf-8")
        return parse_replication(text, custom_streams=customs, origin=str(path)), path

    def build_defs_from_state(
        self, context: dg.ComponentLoadContext, state_path: Path | None
    ) -> dg.Definitions:
        streams, path = self.streams(context, state_path)
        translation = self.translation
        return build_definitions(
            streams,
            self.translator(),
            zoho_crm=self.resource(),
            io_manager=PostgresIOManager(database_url=self.database_url),
            freshness_minutes=translation.freshness_minutes if translation else None,
            replication_file=path,
        )

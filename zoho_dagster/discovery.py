"""The org's modules as last discovered, kept in a file so that loading the definitions never calls Zoho.

``zoho-dagster discover --write`` asks Zoho for its modules (``/settings/modules``, one call) and writes
them to ``zoho_crm_discovery.yaml`` (or ``$ZOHO_DAGSTER_DISCOVERY``). The replication file's ``'*'`` reads
that file to add the org's other record modules, standard and custom, to the catalog: Dagster loads
definitions in every process (webserver, daemon, each run), and a Zoho call there would spend credits, slow
every load and break loading whenever Zoho is unreachable.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from zoho_dagster.environment import discovery_file
from zoho_dagster.streams import KNOWN_STREAMS, STREAMS_BY_NAME, StreamSpec

_HEADER = (
    "# Written by `zoho-dagster discover --write`: the Zoho CRM modules of the org. The replication\n"
    "# file's '*' adds its record modules (generated_type default or custom, api_supported) as incremental\n"
    "# streams named in snake_case (Sales_Orders -> sales_orders).\n"
    "# Re-run the command after adding a module in Zoho; loading the Dagster definitions reads this file\n"
    "# and never calls Zoho.\n"
)


RECORD_MODULE_TYPES = frozenset({"default", "custom"})
NOT_RECORD_MODULES = frozenset({"Activities"})
"""Modules Zoho lists as api_supported that the records API does not serve (docs/zoho-crm-api.md §3.1)."""


class DiscoveryError(ValueError):
    """The discovery file cannot be read; the message names the file and the fix."""


@dataclass(frozen=True)
class DiscoveredModule:
    """One module of ``/settings/modules``, reduced to what selects and names a stream."""

    api_name: str
    module_name: str
    plural_label: str
    generated_type: str
    api_supported: bool

    @property
    def stream_name(self) -> str:
        return snake_case(self.api_name)

    @property
    def is_record_stream(self) -> bool:
        """A standard or custom record module that the API serves: it can be an incremental stream.

        Subform and linking modules are not: their rows are the child tables of their parent's stream. Web
        tabs have no records, and ``Activities`` cannot be called from API v3 on (docs/zoho-crm-api.md §3.1).
        """
        return (
            self.api_supported
            and self.generated_type in RECORD_MODULE_TYPES
            and self.api_name not in NOT_RECORD_MODULES
        )


def snake_case(api_name: str) -> str:
    """``Job_Openings`` → ``job_openings``, ``CustomModule3`` → ``custom_module3``.

    Zoho API names mix CamelCase and underscores; Postgres folds unquoted names to lower case, so a stream
    (and table) name in snake_case is the one a SQL user would type.
    """
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", api_name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", spaced)
    cleaned = re.sub(r"[^0-9a-zA-Z]+", "_", spaced).strip("_").lower()
    cleaned = re.sub(r"_+", "_", cleaned)
    return cleaned if not cleaned[:1].isdigit() else f"m_{cleaned}"


def discovery_path() -> Path:
    """``$ZOHO_DAGSTER_DISCOVERY`` or ``./zoho_crm_discovery.yaml`` (the project root, where Dagster runs)."""
    return discovery_file()


def modules_from_zoho(raw_modules: Iterable[Mapping[str, Any]]) -> list[DiscoveredModule]:
    """Zoho's module dicts as :class:`DiscoveredModule` s; modules without an ``api_name`` are skipped."""
    modules = []
    for raw in raw_modules:
        api_name = raw.get("api_name")
        if not api_name:
            continue
        modules.append(
            DiscoveredModule(
                api_name=str(api_name),
                module_name=str(raw.get("module_name") or api_name),
                plural_label=str(raw.get("plural_label") or api_name),
                generated_type=str(raw.get("generated_type") or "default"),
                api_supported=bool(raw.get("api_supported", False)),
            )
        )
    return modules


def write_discovery(modules: Iterable[DiscoveredModule], path: Path | None = None) -> Path:
    """Write the modules to the discovery file (atomically: a half-written file would break every load)."""
    target = path or discovery_path()
    document = {
        "discovered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "modules": [
            {
                "api_name": module.api_name,
                "module_name": module.module_name,
                "plural_label": module.plural_label,
                "generated_type": module.generated_type,
                "api_supported": module.api_supported,
                "stream": module.stream_name,
            }
            for module in modules
        ],
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(_HEADER + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    temporary.replace(target)
    return target


def read_discovery(path: Path | None = None) -> list[DiscoveredModule] | None:
    """The modules in the discovery file, or ``None`` when there is no file (nothing discovered yet)."""
    source = path or discovery_path()
    if not source.exists():
        return None
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DiscoveryError(
            f"The discovery file {source} is not valid YAML ({error}); "
            "re-create it with `zoho-dagster discover --write`."
        ) from None
    raw_modules = document.get("modules") if isinstance(document, dict) else None
    if not isinstance(raw_modules, list):
        raise DiscoveryError(
            f"The discovery file {source} has no 'modules' list; "
            "re-create it with `zoho-dagster discover --write`."
        )
    return modules_from_zoho(raw for raw in raw_modules if isinstance(raw, dict))


def module_stream_specs(modules: Iterable[DiscoveredModule] | None) -> list[StreamSpec]:
    """Incremental streams for the org's record modules beyond the default set, standard and custom.

    A module the default set already syncs (``Events`` is ``meetings``) keeps its catalog stream; a standard
    module known by name keeps that stream's spec; any other module becomes ``snake_case(api_name)``.
    """
    synced = {spec.module for spec in STREAMS_BY_NAME.values() if spec.module}
    specs: dict[str, StreamSpec] = {}
    for module in modules or ():
        if not module.is_record_stream or module.api_name in synced:
            continue
        name = module.stream_name
        if name in STREAMS_BY_NAME or name in specs:
            continue
        known = KNOWN_STREAMS.get(name)
        if known is not None and known.module == module.api_name:
            specs[name] = known
            continue
        kind = "Custom module" if module.generated_type == "custom" else "Module"
        specs[name] = StreamSpec(
            name=name,
            module=module.api_name,
            mode="incremental",
            description=f"{kind} {module.plural_label} (Zoho API name {module.api_name})",
        )
    return list(specs.values())

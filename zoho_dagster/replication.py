"""The replication file: which streams to sync, in which mode, into which table — in Sling's shape.

Users arriving from Sling keep their file: ``source``, ``target``, ``defaults: {mode, object}`` and
``streams`` (a stream name, a glob such as ``'*'``, each with optional ``mode``, ``object`` and ``disabled``).
``'*'`` is the catalog plus the org's other record modules, standard and custom, from the discovery file
(:mod:`zoho_dagster.discovery`), so reading the replication never calls Zoho. A standard module outside the
default set (``invoices``, ``sales_orders``, …: :data:`~zoho_dagster.streams.STANDARD_MODULES`) can also be
named without a discovery file. Without a file (``ZOHO_DAGSTER_REPLICATION`` unset) every
catalog stream is synced into ``zoho_crm.<stream>``.

``source`` and ``target`` name Sling connections; here the source is the Zoho settings (``ZOHO_CRM_*``) and
the target ``ZOHO_DAGSTER_DATABASE_URL``, so both are accepted and only checked to be names.
"""

import fnmatch
import re
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from zoho_dagster.discovery import discovery_path, module_stream_specs, read_discovery
from zoho_dagster.environment import REPLICATION_VARIABLE, replication_file
from zoho_dagster.postgres.tables import DEFAULT_SCHEMA, TableName
from zoho_dagster.streams import CATALOG, STANDARD_MODULES, StreamSpec, SyncMode, closest_stream

DEFAULT_OBJECT = "zoho_crm.{stream_name}"
MODES: tuple[SyncMode, ...] = ("incremental", "full-refresh")
TOP_LEVEL_KEYS = ("source", "target", "defaults", "streams")
DEFAULT_KEYS = ("mode", "object")
STREAM_KEYS = ("mode", "object", "disabled")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ReplicationError(ValueError):
    """The replication file is invalid; the message is one sentence naming the key and the fix."""


class ReplicatedStream(NamedTuple):
    """One selected stream: its spec (with the replication's mode) and its target table."""

    spec: StreamSpec
    target: TableName


def default_target(spec: StreamSpec) -> TableName:
    """``zoho_crm.<stream>``: where a stream lands when the replication file does not say."""
    return TableName(DEFAULT_SCHEMA, spec.name)


def replicated(
    stream: StreamSpec | ReplicatedStream, table: str | TableName | None = None
) -> ReplicatedStream:
    """``stream`` with its target table: as given, else ``table``, else :func:`default_target`."""
    if isinstance(stream, ReplicatedStream):
        return stream
    if table is None:
        return ReplicatedStream(stream, default_target(stream))
    return ReplicatedStream(stream, table if isinstance(table, TableName) else TableName.parse(table))


def default_replication() -> list[ReplicatedStream]:
    """Every catalog stream in its own mode into ``zoho_crm.<stream>``: the default without a file."""
    return [replicated(spec) for spec in CATALOG]


def load_replication(
    path: Path | str | None = None, discovery_file: Path | None = None
) -> list[ReplicatedStream]:
    """The streams selected by the replication file at ``path`` (default: ``$ZOHO_DAGSTER_REPLICATION``).

    No path and no variable: :func:`default_replication`. The discovery file (for ``'*'`` and custom streams)
    is ``discovery_file`` or ``$ZOHO_DAGSTER_DISCOVERY`` or ``./zoho_crm_discovery.yaml``.
    """
    source = Path(path) if path is not None else replication_file()
    if source is None:
        return default_replication()
    if not source.is_file():
        raise ReplicationError(
            f"The replication file {source} does not exist; "
            f"fix {REPLICATION_VARIABLE} (or unset it to sync the whole catalog)."
        )
    text = source.read_text(encoding="utf-8")
    return parse_replication(text, discovery_file=discovery_file, origin=str(source))


def parse_replication(
    text: str,
    *,
    discovery_file: Path | None = None,
    custom_streams: Sequence[StreamSpec] | None = None,
    origin: str = "the replication file",
) -> list[ReplicatedStream]:
    """Parse replication YAML text into streams and targets, in catalog order then the discovered modules.

    ``custom_streams`` (the org's record modules beyond the catalog, standard and custom) overrides the
    discovery file, for tests and callers that already know the org's modules. ``'*'`` matches the catalog
    and these; a name may also be one of the standard modules known without discovery.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        detail = " ".join(str(error).split())
        raise ReplicationError(f"{origin} is not valid YAML ({detail}); fix the syntax.") from None
    if not isinstance(document, dict):
        raise ReplicationError(
            f"{origin} must be a mapping with 'source', 'target', 'defaults' and 'streams'."
        )
    _reject_unknown(document, TOP_LEVEL_KEYS, "", origin)
    for key in ("source", "target"):
        if key in document and not isinstance(document[key], str):
            raise ReplicationError(
                f"'{key}' in {origin} must be a connection name such as ZOHO_CRM or MY_POSTGRES."
            )

    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ReplicationError(f"'defaults' in {origin} must be a mapping with 'mode' and/or 'object'.")
    _reject_unknown(defaults, DEFAULT_KEYS, "defaults.", origin)
    default_mode = _check_mode(defaults.get("mode"), "defaults.mode", origin)
    default_object = defaults.get("object", DEFAULT_OBJECT)
    _check_template(default_object, "defaults.object", origin)

    streams = document.get("streams")
    if not isinstance(streams, dict) or not streams:
        raise ReplicationError(
            f"'streams' in {origin} must map stream names to settings, e.g. `streams: {{leads: , '*': }}`."
        )

    customs = list(custom_streams) if custom_streams is not None else _discovered(discovery_file)
    known: dict[str, StreamSpec] = {spec.name: spec for spec in CATALOG}
    known.update({spec.name: spec for spec in customs})
    nameable = dict(known)
    for spec in STANDARD_MODULES:
        nameable.setdefault(spec.name, spec)

    settings: dict[str, dict[str, Any]] = {}
    explicit: dict[str, dict[str, Any]] = {}
    for raw_key, raw_value in streams.items():
        key = str(raw_key)
        value = _stream_settings(raw_value, key, origin)
        if any(char in key for char in "*?["):
            matched = [name for name in known if fnmatch.fnmatchcase(name, key)]
            if not matched:
                raise ReplicationError(
                    f"streams.'{key}' in {origin} matches no stream; {_known_sentence(known)}"
                )
            for name in matched:
                settings.setdefault(name, {}).update(value)
        elif key in nameable:
            explicit[key] = value
            known.setdefault(key, nameable[key])
        else:
            raise ReplicationError(_unknown_stream_sentence(key, nameable, origin))
    for name, value in explicit.items():
        settings.setdefault(name, {}).update(value)

    selected: list[ReplicatedStream] = []
    owners: dict[TableName, str] = {}
    for name, spec in known.items():
        if name not in settings or settings[name].get("disabled"):
            continue
        value = settings[name]
        _resolve_mode(spec, value.get("mode"), default_mode, origin)
        template = value.get("object", default_object)
        target = _render(template, spec.name, f"streams.{name}.object", origin)
        if target in owners:
            raise ReplicationError(
                f"streams '{owners[target]}' and '{name}' in {origin} both write to {target}; "
                "give one of them its own 'object'."
            )
        owners[target] = name
        selected.append(ReplicatedStream(spec, target))
    if not selected:
        raise ReplicationError(f"{origin} selects no stream (all are disabled); enable at least one stream.")
    return selected


def _discovered(discovery_file: Path | None) -> list[StreamSpec]:
    return module_stream_specs(read_discovery(discovery_file or discovery_path()))


def _reject_unknown(mapping: Mapping[str, Any], allowed: Sequence[str], prefix: str, origin: str) -> None:
    for key in mapping:
        if key not in allowed:
            choices = ", ".join(f"'{prefix}{name}'" for name in allowed)
            raise ReplicationError(
                f"'{prefix}{key}' in {origin} is not supported; remove it (supported here: {choices})."
            )


def _stream_settings(raw: Any, key: str, origin: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ReplicationError(
            f"streams.{key} in {origin} must be empty or a mapping with 'mode', 'object' or 'disabled'."
        )
    _reject_unknown(raw, STREAM_KEYS, f"streams.{key}.", origin)
    value = dict(raw)
    if "mode" in value:
        _check_mode(value["mode"], f"streams.{key}.mode", origin)
    if "object" in value:
        _check_template(value["object"], f"streams.{key}.object", origin)
    if "disabled" in value and not isinstance(value["disabled"], bool):
        raise ReplicationError(f"streams.{key}.disabled in {origin} must be true or false.")
    return value


def _check_mode(mode: Any, key: str, origin: str) -> SyncMode | None:
    if mode is None:
        return None
    if mode not in MODES:
        raise ReplicationError(f"{key} in {origin} is {mode!r}; use 'incremental' or 'full-refresh'.")
    return mode


def _resolve_mode(
    spec: StreamSpec, explicit: SyncMode | None, default: SyncMode | None, origin: str
) -> SyncMode:
    """The stream's mode: its own setting, else the default, within what the stream can do.

    Zoho cannot filter ``users`` and ``modules`` by modification time, so they are always refreshed whole; a
    default of ``incremental`` (as in Sling's examples) leaves them so. Record streams are always incremental,
    by day partitions of ``Modified_Time`` (re-syncing one is a backfill of its partitions). Asking a stream
    for the mode it cannot have is an error naming the key.
    """
    if explicit is not None and explicit != spec.mode:
        if spec.module is None:
            raise ReplicationError(
                f"streams.{spec.name}.mode in {origin} cannot be 'incremental' because Zoho cannot filter "
                f"{spec.name} by modification time; use mode: full-refresh."
            )
        raise ReplicationError(
            f"streams.{spec.name}.mode in {origin} cannot be 'full-refresh' because record streams sync "
            "incrementally by daily partitions (re-sync by backfilling them); remove the mode."
        )
    if explicit is None and default == "full-refresh" and spec.mode == "incremental":
        raise ReplicationError(
            f"defaults.mode in {origin} is 'full-refresh', but {spec.name} and the other record streams sync "
            "incrementally; set defaults.mode: incremental (users and modules are refreshed whole anyway)."
        )
    return spec.mode


def _check_template(template: Any, key: str, origin: str) -> None:
    if not isinstance(template, str) or not template:
        raise ReplicationError(f"{key} in {origin} must be a string such as zoho_crm.{{stream_name}}.")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError:
        raise ReplicationError(
            f"{key} in {origin} is {template!r}, which has an unbalanced brace; "
            "write e.g. crm.{stream_name}."
        ) from None
    unknown = [name for name in fields if name != "stream_name"]
    if unknown:
        raise ReplicationError(
            f"{key} in {origin} uses {{{unknown[0]}}}; the only placeholder is {{stream_name}}, "
            "e.g. crm.{stream_name}."
        )
    if key == "defaults.object" and "stream_name" not in fields:
        raise ReplicationError(
            f"defaults.object in {origin} is {template!r}, which would put every stream in one table; "
            "include {stream_name}, e.g. crm.{stream_name}."
        )
    _render(template, "stream_name", key, origin)


def _render(template: str, stream_name: str, key: str, origin: str) -> TableName:
    rendered = template.format(stream_name=stream_name)
    parts = rendered.split(".")
    if len(parts) != 2 or not all(_IDENTIFIER.match(part) for part in parts):
        raise ReplicationError(
            f"{key} in {origin} is {template!r}, which gives {rendered!r}; it must be schema.table in "
            "lower-case letters, digits and underscores, e.g. crm.{stream_name}."
        )
    return TableName(parts[0], parts[1])


def _known_sentence(known: Mapping[str, StreamSpec]) -> str:
    return f"the streams are: {', '.join(known)}."


def _unknown_stream_sentence(key: str, known: Mapping[str, StreamSpec], origin: str) -> str:
    close = closest_stream(key, known)
    hint = f"did you mean '{close}'? " if close else ""
    return (
        f"streams.{key} in {origin} is not a Zoho CRM stream; {hint}use a catalog or standard stream or a "
        f"module listed by `zoho-dagster discover --write` ({', '.join(known)})."
    )


def stream_lines(text: str, names: Sequence[str]) -> dict[str, int]:
    """The line (1-based) of the replication file's ``streams`` entry that selects each of ``names``.

    A stream named by its own key is found there; one selected by a glob (``'*'``) at the first glob that
    matches it. Used for the assets' code references (the UI links each stream to its line); text that is
    not a replication file gives no lines.
    """
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(root, yaml.MappingNode):
        return {}
    streams = next(
        (value for key, value in root.value if isinstance(key, yaml.ScalarNode) and key.value == "streams"),
        None,
    )
    if not isinstance(streams, yaml.MappingNode):
        return {}
    entries = [(str(key.value), key.start_mark.line + 1) for key, _ in streams.value]
    lines: dict[str, int] = {}
    for name in names:
        exact = next((line for key, line in entries if key == name), None)
        matched = next((line for key, line in entries if fnmatch.fnmatchcase(name, key)), None)
        line = exact if exact is not None else matched
        if line is not None:
            lines[name] = line
    return lines

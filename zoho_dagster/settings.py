"""The Zoho connection (docs/design.md §1, a contract) turned into validated settings, or one clear sentence.

Variables mirror Sling's ``zoho-crm`` connection: ``ZOHO_CRM_CLIENT_ID``, ``..._CLIENT_SECRET``, ``..._SOID``,
``..._REFRESH_TOKEN``, ``..._REGION``, ``..._ACCOUNTS_URL``, ``..._API_DOMAIN``, ``..._ANCHOR_DATE``,
``..._DAILY_CREDIT_BUDGET``,
``ZOHO_DAGSTER_DATABASE_URL``, or the whole connection in ``ZOHO_CRM`` (YAML or JSON: ``{type: api, spec:
zoho-crm, secrets: {...}, inputs: {anchor_date}}``). A single variable wins over the same key in ``ZOHO_CRM``,
so one value can be overridden without rewriting the connection.

Reading and validating are apart: :func:`read_environment` collects raw values with where each came from,
and :func:`validate_settings` checks them. :class:`~zoho_dagster.resource.ZohoCRMResource` validates its own
fields through the same :func:`validate_settings`, so both paths give the same sentences.

Missing credentials are *not* an error here: Dagster must load its definitions on a machine without secrets.
They fail at the first step that needs them, through :meth:`ZohoSettings.credentials`. Nor does loading the
definitions validate the other settings: only the anchor date is read then (:func:`load_anchor_date`).

Secrets are registered for redaction before any other value is judged, every error text is redacted, and a
value that holds a secret (the client secret pasted into ``ZOHO_CRM_SOID``) is never quoted back.
"""

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

import yaml

from zoho_dagster import environment
from zoho_dagster.client import (
    DEFAULT_SCOPES,
    MAX_EDITION_CONCURRENCY,
    REGIONS,
    Credentials,
    ZohoConfigError,
    hosts,
    mask,
    redact,
    register_secret,
)

CONNECTION = "ZOHO_CRM"
DATABASE_URL = environment.DATABASE_URL_VARIABLE
ANCHOR_DATE = "ZOHO_CRM_ANCHOR_DATE"
SCOPES = "ZOHO_CRM_SCOPES"
# setting name → its own variable; the same names are the keys of ZOHO_CRM's ``secrets``.
SECRET_VARIABLES: dict[str, str] = {
    "client_id": "ZOHO_CRM_CLIENT_ID",
    "client_secret": "ZOHO_CRM_CLIENT_SECRET",
    "soid": "ZOHO_CRM_SOID",
    "refresh_token": "ZOHO_CRM_REFRESH_TOKEN",
    "region": "ZOHO_CRM_REGION",
    "accounts_url": "ZOHO_CRM_ACCOUNTS_URL",
    "api_domain": "ZOHO_CRM_API_DOMAIN",
}
# setting name → variable of the tuning knobs (how fast, how the window is read); not part of a connection.
TUNING_VARIABLES: dict[str, str] = {
    "max_concurrency": "ZOHO_CRM_MAX_CONCURRENCY",
    "requests_per_second": "ZOHO_CRM_REQUESTS_PER_SECOND",
    "bulk_threshold": "ZOHO_CRM_BULK_THRESHOLD",
    "coql_passes": "ZOHO_CRM_COQL_PASSES",
    "whole_rich_text": "ZOHO_CRM_WHOLE_RICH_TEXT",
}
DEFAULT_BULK_THRESHOLD = 100_000
"""Windows holding more records than this are read with Bulk Read (docs/design.md §3)."""
DAILY_CREDIT_BUDGET = "ZOHO_CRM_DAILY_CREDIT_BUDGET"
"""Zoho API credits the syncs may spend in any 24 hours (docs/design.md §3, "Credit budget"); unset: no
budget. Not a resource field (unlike the tuning knobs above): it limits the whole deployment, not a run."""
VARIABLES: tuple[str, ...] = (
    *SECRET_VARIABLES.values(),
    *TUNING_VARIABLES.values(),
    DAILY_CREDIT_BUDGET,
    ANCHOR_DATE,
    SCOPES,
    DATABASE_URL,
    CONNECTION,
)
_SOID = re.compile(r"^ZohoCRM\.[A-Za-z0-9_-]+$")
_CONNECTION_EXAMPLE = (
    '{type: api, spec: zoho-crm, secrets: {client_id: ..., client_secret: ..., soid: "ZohoCRM.<org_id>"}}'
)
LOOPBACK_NAMES = ("localhost",)
"""Hosts besides loopback addresses (127.0.0.0/8, ::1) that may be reached over plain http and with a path."""


def _refuse(text: str) -> ZohoConfigError:
    """The error for a bad setting, its text redacted: a secret pasted anywhere must not come back in it."""
    return ZohoConfigError(redact(text))


def _shown(value: str) -> str:
    """``value`` quoted for a message, or a stand-in when it holds a registered secret (never echoed)."""
    return repr(value) if redact(value) == value else "a secret (not shown)"


@dataclass(frozen=True)
class ZohoSettings:
    """Validated configuration. Secrets are kept out of the repr; ``sources`` says where each value came from.
    """

    client_id: str | None
    client_secret: str | None = field(repr=False)
    soid: str | None
    refresh_token: str | None = field(repr=False)
    region: str
    accounts_url: str
    api_domain: str | None
    anchor_date: date
    database_url: str | None = field(repr=False)
    scopes: str = DEFAULT_SCOPES
    max_concurrency: int | None = None
    requests_per_second: float | None = None
    bulk_threshold: int = DEFAULT_BULK_THRESHOLD
    coql_passes: bool = True
    whole_rich_text: bool = True
    daily_credit_budget: int | None = None
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"ZohoSettings(client_id={self.client_id!r}, client_secret={mask(self.client_secret)}, soid="
            f"{self.soid!r}, refresh_token={mask(self.refresh_token)}, region={self.region!r}, accounts_url="
            f"{self.accounts_url!r}, api_domain={self.api_domain!r}, anchor_date="
            f"{self.anchor_date.isoformat()}, database_url={mask(self.database_url)})"
        )

    @property
    def has_credentials(self) -> bool:
        return bool(self.client_id and self.client_secret and (self.soid or self.refresh_token))

    def credentials(self) -> Credentials:
        """The OAuth credentials, or a ``ZohoConfigError`` naming the missing variable and the fix."""
        if not self.client_id:
            raise _refuse(
                "ZOHO_CRM_CLIENT_ID is not set; set ZOHO_CRM_CLIENT_ID, ZOHO_CRM_CLIENT_SECRET and "
                "ZOHO_CRM_SOID (or ZOHO_CRM_REFRESH_TOKEN), or ZOHO_CRM to a connection like "
                f"{_CONNECTION_EXAMPLE}."
            )
        if not self.client_secret:
            raise _refuse(
                "ZOHO_CRM_CLIENT_SECRET is not set; set it to the secret of the Self Client "
                f"{self.client_id} (Zoho API console > Self Client > Client Secret)."
            )
        if not self.soid and not self.refresh_token:
            raise _refuse(
                "Neither ZOHO_CRM_SOID nor ZOHO_CRM_REFRESH_TOKEN is set; set ZOHO_CRM_SOID to "
                "ZohoCRM.<org_id> (client-credentials grant) or ZOHO_CRM_REFRESH_TOKEN (refresh-token "
                "grant)."
            )
        return Credentials(
            client_id=self.client_id,
            client_secret=self.client_secret,
            accounts_url=self.accounts_url,
            region=self.region,
            soid=self.soid,
            refresh_token=self.refresh_token,
            scopes=self.scopes,
        )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def parse_connection(raw: str) -> tuple[dict[str, str], dict[str, str]]:
    """``ZOHO_CRM`` (YAML or JSON) → ``(secrets, inputs)``; errors never quote the text (it holds secrets)."""
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" near line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _refuse(
            f"ZOHO_CRM is not valid YAML or JSON{where}; set it to a connection like {_CONNECTION_EXAMPLE}."
        ) from None
    if not isinstance(document, dict):
        raise _refuse(
            f"ZOHO_CRM must be a mapping; set it to a connection like {_CONNECTION_EXAMPLE}."
        )
    kind, spec = _text(document.get("type")), _text(document.get("spec"))
    if kind not in (None, "api") or spec not in (None, "zoho-crm"):
        raise _refuse(
            f"ZOHO_CRM has type {kind!r} and spec {spec!r}; set type: api and spec: zoho-crm (a connection "
            f"like {_CONNECTION_EXAMPLE})."
        )
    secrets, inputs = document.get("secrets") or {}, document.get("inputs") or {}
    if not isinstance(secrets, dict) or not isinstance(inputs, dict):
        raise _refuse(
            "ZOHO_CRM's secrets and inputs must be mappings; set it to a connection like "
            f"{_CONNECTION_EXAMPLE}."
        )
    unknown = sorted(set(map(str, secrets)) - set(SECRET_VARIABLES))
    if unknown:
        raise _refuse(
            f"ZOHO_CRM has unknown secrets key(s) {', '.join(unknown)}; use only "
            f"{', '.join(SECRET_VARIABLES)}."
        )
    unknown = sorted(set(map(str, inputs)) - {"anchor_date"})
    if unknown:
        raise _refuse(
            f"ZOHO_CRM has unknown inputs key(s) {', '.join(unknown)}; use only anchor_date."
        )
    values = {str(k): t for k, v in secrets.items() if (t := _text(v)) is not None}
    input_values = {str(k): t for k, v in inputs.items() if (t := _text(v)) is not None}
    return values, input_values


def _is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: traffic that never leaves the machine (the simulator's)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(value: str | None, label: str, example: str, carries: str) -> str | None:
    """``value`` without a trailing slash, or a sentence: it must be ``https://host`` (``carries`` names the
    secret it would carry).

    Plain http would send that secret in cleartext, and a path (a pasted ``.../oauth/v2/token``) is appended
    to, so Zoho answers 404 and the failure looks like bad credentials. Loopback hosts are exempt: the
    simulator serves every data centre over http, each under a path of one local port.
    """
    if value is None:
        return None
    if not re.match(r"^https?://[^/\s]+", value):
        raise _refuse(f"{label} must be an https URL such as {example}; got {_shown(value)}.")
    parts = urlsplit(value)
    if _is_loopback(parts.hostname or ""):
        return value.rstrip("/")
    server = f"https://{parts.netloc}"
    if parts.scheme != "https":
        raise _refuse(
            f"{label} is {_shown(value)}, which would send {carries} unencrypted; set it to {server} (plain "
            "http is accepted only for a loopback host: 127.0.0.1, ::1 or localhost)."
        )
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise _refuse(
            f"{label} is {_shown(value)}, which has a path; set it to the server alone (scheme://host), e.g. "
            f"{server}."
        )
    return value.rstrip("/")


def _number(
    raw: "RawSettings",
    name: str,
    kind: type[int] | type[float],
    lowest: float,
    highest: float | None,
    default: Any = None,
    hint: str = "",
) -> Any:
    """``raw``'s ``name`` as a number within ``[lowest, highest]``, or a sentence naming its source (``hint``
    ends it, e.g. what the number means)."""
    text = raw.values.get(name)
    if text is None:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < lowest or (highest is not None and value > highest):
        bound = f"between {lowest:g} and {highest:g}" if highest is not None else f"at least {lowest:g}"
        what = "a whole number" if kind is int else "a number"
        raise _refuse(f"{raw.sources[name]} is {_shown(text)}; set it to {what} {bound}{hint}.")
    return value


_SWITCH_WORDS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def _switch(raw: "RawSettings", name: str, default: bool) -> bool:
    """``raw``'s ``name`` as on or off (true/false, 1/0, yes/no, on/off), or a sentence naming its source."""
    text = raw.values.get(name)
    if text is None:
        return default
    value = _SWITCH_WORDS.get(text.strip().lower())
    if value is None:
        raise _refuse(f"{raw.sources[name]} is {_shown(text)}; set it to true or false.")
    return value


def default_anchor(today: date) -> date:
    """A year before ``today`` (Sling's default): the first day of history when no anchor is set."""
    try:
        return today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        return today - timedelta(days=365)


def _anchor(value: str | None, label: str, today: date) -> date:
    if value is None:
        return default_anchor(today)
    try:
        parsed = date.fromisoformat(value)
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", value):
            raise ValueError(value)
    except ValueError:
        raise _refuse(
            f"{label} is {_shown(value)}; set it to a date in the form YYYY-MM-DD, e.g. 2024-01-31."
        ) from None
    if parsed > today:
        raise _refuse(f"{label} is {value}, which is in the future; set it to a past date (YYYY-MM-DD).")
    return parsed


@dataclass
class RawSettings:
    """Values as given, before validation: setting name → text, and setting name → where it came from.

    Names are those of :data:`SECRET_VARIABLES` plus ``anchor_date``, ``scopes`` and ``database_url``; the
    source labels are what error sentences cite (a variable, a connection key or a resource field).
    """

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, value: Any, source: str) -> None:
        """Record ``value`` (ignored when empty) for ``name`` as coming from ``source``; later calls win."""
        text = _text(value)
        if text is not None:
            self.values[name], self.sources[name] = text, source

    def add_connection(self, raw: str, label: str) -> None:
        """Every key of a Sling-style connection (the ``ZOHO_CRM`` variable or the resource's field)."""
        secrets, inputs = parse_connection(raw)
        for name, value in secrets.items():
            self.set(name, value, f"{label} (secrets.{name})")
        if "anchor_date" in inputs:
            self.set("anchor_date", inputs["anchor_date"], f"{label} (inputs.anchor_date)")


def read_environment(environ: Mapping[str, str] | None = None) -> RawSettings:
    """The raw settings of ``environ`` (default ``os.environ``): a single variable wins over ``ZOHO_CRM``."""
    env = os.environ if environ is None else environ
    raw = RawSettings()
    if _text(env.get(CONNECTION)):
        raw.add_connection(str(env[CONNECTION]), CONNECTION)
    for name, variable in SECRET_VARIABLES.items():
        raw.set(name, env.get(variable), variable)
    for name, variable in TUNING_VARIABLES.items():
        raw.set(name, env.get(variable), variable)
    raw.set("daily_credit_budget", env.get(DAILY_CREDIT_BUDGET), DAILY_CREDIT_BUDGET)
    raw.set("anchor_date", env.get(ANCHOR_DATE), ANCHOR_DATE)
    raw.set("scopes", env.get(SCOPES), SCOPES)
    raw.set("database_url", environment.database_url(env), DATABASE_URL)
    return raw


def _register_secrets(raw: RawSettings) -> None:
    """Make the secrets known to :func:`redact` before any other value is judged (and perhaps quoted)."""
    for name in ("client_secret", "refresh_token"):
        register_secret(raw.values.get(name))


def _check_soid(soid: str | None, label: str) -> str | None:
    if soid is not None and not _SOID.match(soid):
        hint = f"e.g. ZohoCRM.{soid}" if soid.isdigit() else "with the org ID from Setup > Company Details"
        raise _refuse(f"{label} is {_shown(soid)}; set it to the form ZohoCRM.<org_id>, {hint}.")
    return soid


def _check_database_url(url: str | None, label: str) -> str | None:
    if url is not None and not re.match(r"^postgres(ql)?(\+\w+)?://", url):
        raise _refuse(
            f"{label} must be a PostgreSQL URL (postgresql://user:password@host:5432/db); it starts with "
            f"{_shown(url.split(':', 1)[0])}."
        )
    return url


def validate_settings(raw: RawSettings, today: date | None = None) -> ZohoSettings:
    """Validated settings from ``raw``; a bad value raises ``ZohoConfigError`` naming its source."""
    today = today or date.today()
    values, sources = raw.values, raw.sources
    _register_secrets(raw)
    region_code = values.get("region")
    if region_code is None and values.get("accounts_url"):
        # an explicit accounts server of a known region names the region (for the messages that cite it)
        known = {r.accounts_url: code for code, r in REGIONS.items()}
        region_code = known.get(values["accounts_url"].rstrip("/"))
    region_hosts = hosts(region_code)
    accounts_url = _check_url(
        values.get("accounts_url"),
        sources.get("accounts_url", ""),
        "https://accounts.zoho.eu",
        "the client secret",
    )
    api_domain = _check_url(
        values.get("api_domain"), sources.get("api_domain", ""), "https://www.zohoapis.eu", "the access token"
    )
    soid = _check_soid(values.get("soid"), sources.get("soid", ""))
    database_url = _check_database_url(values.get("database_url"), sources.get("database_url", ""))
    return ZohoSettings(
        client_id=values.get("client_id"),
        client_secret=values.get("client_secret"),
        soid=soid,
        refresh_token=values.get("refresh_token"),
        region=region_hosts.code,
        accounts_url=accounts_url or region_hosts.accounts_url,
        api_domain=api_domain,
        anchor_date=_anchor(values.get("anchor_date"), sources.get("anchor_date", ANCHOR_DATE), today),
        database_url=database_url,
        scopes=values.get("scopes") or DEFAULT_SCOPES,
        max_concurrency=_number(raw, "max_concurrency", int, 1, MAX_EDITION_CONCURRENCY),
        requests_per_second=_number(raw, "requests_per_second", float, 0.001, None),
        bulk_threshold=_number(raw, "bulk_threshold", int, 0, None, DEFAULT_BULK_THRESHOLD),
        coql_passes=_switch(raw, "coql_passes", True),
        whole_rich_text=_switch(raw, "whole_rich_text", True),
        daily_credit_budget=_number(
            raw,
            "daily_credit_budget",
            int,
            1,
            None,
            hint=" (the Zoho API credits the syncs may spend in any 24 hours), or unset it for no budget",
        ),
        sources=dict(sources),
    )


def load_settings(environ: Mapping[str, str] | None = None, today: date | None = None) -> ZohoSettings:
    """Validated settings from ``environ`` (default ``os.environ``); bad values raise ``ZohoConfigError``."""
    return validate_settings(read_environment(environ), today)


def load_anchor_date(environ: Mapping[str, str] | None = None, today: date | None = None) -> date:
    """The anchor date alone (``ZOHO_CRM_ANCHOR_DATE`` or ``ZOHO_CRM``'s ``inputs.anchor_date``), validated.

    The partitions need the anchor while the definitions load, when no other setting may stop the load: a
    bad region or SOID must fail a run's first step (and ``zoho-dagster check``), not the code location.
    """
    raw = read_environment(environ)
    _register_secrets(raw)
    label = raw.sources.get("anchor_date", ANCHOR_DATE)
    return _anchor(raw.values.get("anchor_date"), label, today or date.today())

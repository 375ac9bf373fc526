"""``ZohoClient``: the one object the assets talk to (docs/contracts.md §2).

It only composes the rooms of this package — token provider, limiter, HTTP manners, window reader — and names
what each endpoint needs (its OAuth scope and credit cost), so that refusals can say which scope is missing.
Every method adds its calls and credits to ``client.stats``.
"""

import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from zoho_dagster.client.auth import Credentials, TokenProvider
from zoho_dagster.client.bulk import (
    JOB_PAGE_SIZE,
    LAYOUT_TYPE,
    BulkUnavailable,
    bulk_exportable,
    read_layouts,
)
from zoho_dagster.client.bulk_join import BulkJoin
from zoho_dagster.client.coql import same_shape_fields
from zoho_dagster.client.coql_pass import CoqlSwitch
from zoho_dagster.client.errors import ZohoAPIError, ZohoPermissionError
from zoho_dagster.client.full_text import LIST_TEXT_LIMIT, rich_text_fields
from zoho_dagster.client.http import Answer, Need, ZohoHttp
from zoho_dagster.client.limiter import (
    DEFAULT_CONCURRENCY,
    MAX_EDITION_CONCURRENCY,
    SUB_CONCURRENCY,
    shared_limiter,
)
from zoho_dagster.client.policy import RetryPolicy
from zoho_dagster.client.records import CURSOR_FIELD, PER_PAGE, Record, WindowReader, plan_passes
from zoho_dagster.client.redact import mask
from zoho_dagster.client.regions import hosts
from zoho_dagster.client.slices import SlicedReader
from zoho_dagster.client.stats import CallStats
from zoho_dagster.client.timeutil import header_datetime
from zoho_dagster.client.token_cache import PROCESS_TOKEN_CACHE, TokenCache
from zoho_dagster.client.visibility import EVERY_RECORD, system_fields

PAGE_LIMIT_CODE = "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
log = logging.getLogger(__name__)
BULK_UNSERVED = frozenset({"Notes"})
"""Modules Bulk Read refuses (``MODULE_NOT_AVAILABLE``, docs/zoho-crm-api.md §4): not worth a count."""
LIST_UNSUPPORTED_TYPES = frozenset({"subform", "multiselectlookup", "multiuserlookup"})
"""Field types Zoho leaves out of list responses (docs/zoho-crm-api.md §3.3, §7.8): asking for them only costs
field slots, and a table built from list reads has no values for them."""


_EDITION_CONCURRENCY_SEEN: dict[tuple[str, str, str], int] = {}
_EDITIONS = (
    (("ultimate", "crmplus", "crm_plus"), 25),
    (("enterprise", "zohoone", "zoho_one"), 20),
    (("professional",), 15),
    (("standard", "starter"), 10),
    (("free",), 5),
)


def edition_concurrency(license_details: dict[str, Any]) -> int:
    """The concurrency of the edition ``license_details`` names (paid type, else trial type); 5 if unknown.

    Zoho's ``paid_type`` values are only partly documented (e.g. ``zohooneenterprise``), so the edition is
    recognised by the words in it (docs/zoho-crm-api.md §6.3).
    """
    for key in ("paid_type", "trial_type"):
        text = str(license_details.get(key) or "").lower().replace(" ", "")
        for words, concurrency in _EDITIONS:
            if text and any(word in text for word in words):
                return concurrency
    return DEFAULT_CONCURRENCY


class _Counts:
    """Zoho's record counts of one module by ``Modified_Time``, remembered so each instant costs one call."""

    def __init__(self, client: "ZohoClient", module: str) -> None:
        self.client = client
        self.module = module
        self.since: dict[datetime, int] = {}

    def modified_since(self, moment: datetime) -> int:
        if moment >= datetime.now(timezone.utc):
            return 0  # the future: nothing modified yet, no call needed
        if moment not in self.since:
            self.since[moment] = self.client.count(self.module, modified_since=moment)
        return self.since[moment]

    def between(self, start: datetime, end: datetime) -> int:
        """Records with ``start <= Modified_Time < end`` (as of Zoho's count, a few minutes late)."""
        return max(0, self.modified_since(start) - self.modified_since(end))

    def chunks(self, start: datetime, end: datetime, most: int) -> list[tuple[datetime, datetime]]:
        """``[start, end)`` cut in time into pieces of at most ``most`` records (halving, whole seconds)."""
        if self.between(start, end) <= most or end - start <= timedelta(seconds=2):
            return [(start, end)]
        middle = (start + (end - start) / 2).replace(microsecond=0)
        return [*self.chunks(start, middle, most), *self.chunks(middle, end, most)]


def listable_fields(fields: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields of ``fields`` (a module's metadata) that the records list API returns."""
    return [field for field in fields if field.get("data_type") not in LIST_UNSUPPORTED_TYPES]


def record_fields(fields: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The columns of a module's table as field metadata: the listable fields, then the ``$`` keys that say
    whether a record is converted or awaiting approval (:func:`zoho_dagster.client.visibility.system_fields`).
    """
    listable = listable_fields(fields)
    return [*listable, *system_fields(listable)]


def module_scope(module: str) -> str:
    """The narrowest OAuth scope that reads ``module``'s records, e.g. ``ZohoCRM.modules.leads.READ``."""
    return f"ZohoCRM.modules.{module.lower()}.READ"


@dataclass(frozen=True)
class ClientConfig:
    """Everything a client needs; built by ``ZohoCRMResource`` from settings, or directly in code.

    ``token_cache`` is where tokens are shared (default: in this process only); the resource injects a cache
    shared by every process through Postgres. ``max_concurrency`` is the calls in flight of this process;
    ``None`` means the org's edition concurrency (``/org``, asked only when a read needs more than one call
    at a time) divided by ``concurrency_share``, the number of processes that may call Zoho at once (the
    Dagster pool's limit), so that together they stay within the edition. ``requests_per_second`` is an
    optional cap on request starts; ``None`` means none (Zoho limits concurrency, not rate).
    ``bulk_threshold``: a window found to hold more records than this is read with Bulk Read; 0 never.
    ``coql_passes``: fields beyond the records API passes' 50 slots are read with COQL when their type allows
    (:mod:`zoho_dagster.client.coql_pass`); ``False`` reads every pass with the records API.
    ``whole_rich_text``: a rich-text value the list API cut at 500 characters is read again whole, one
    single-record read each (:mod:`zoho_dagster.client.full_text`); ``False`` keeps what the route gave (the
    list's cut, or the CSV's whole value): fewer credits where long rich text is common, and a value of
    exactly 500 characters may then be cut (docs/zoho-crm-api.md §4.1).
    """

    credentials: Credentials
    token_cache: TokenCache = field(default=PROCESS_TOKEN_CACHE, repr=False)
    api_domain: str | None = None
    requests_per_second: float | None = None
    max_concurrency: int | None = None
    concurrency_share: int = 1
    bulk_threshold: int = 0
    coql_passes: bool = True
    whole_rich_text: bool = True
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.concurrency_share < 1:
            raise ValueError("concurrency_share must be at least 1")


class ZohoClient:
    """Zoho CRM v6, read-only: metadata, records by ``Modified_Time`` window, users, deletions, counts."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        credentials = config.credentials
        region_hosts = hosts(credentials.region, credentials.accounts_url, config.api_domain)
        self.stats = CallStats()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=MAX_EDITION_CONCURRENCY)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.tokens = TokenProvider(credentials, config.token_cache, config.policy, self.session)
        self._org_key = (credentials.accounts_url, credentials.client_id, credentials.org_key)
        self.last_window_slices = 0
        """How many slices the last ``iter_records`` window was read in (for metadata and tests)."""
        self._layouts_seen: dict[str, list[Mapping[str, Any]] | None] = {}
        self._concurrency = config.max_concurrency
        # Sorted reads share Zoho's sub-concurrency of 10 across the org: a derived budget takes this
        # process's share of it too; an explicit one is the user's to size (README, "Speed and manners").
        share = 1 if config.max_concurrency else config.concurrency_share
        self._sub_concurrency = max(1, SUB_CONCURRENCY // share)
        self.limiter = shared_limiter(
            self._org_key,
            config.requests_per_second,
            config.max_concurrency or max(1, DEFAULT_CONCURRENCY // config.concurrency_share),
            self._sub_concurrency,
        )
        self.http = ZohoHttp(
            self.tokens,
            self.limiter,
            config.policy,
            self.session,
            self.stats,
            api_domain_override=config.api_domain,
            default_api_domain=region_hosts.api_domain,
        )

    def __repr__(self) -> str:
        c = self.config.credentials
        return (
            f"ZohoClient(region={c.region!r}, accounts_url={c.accounts_url!r}, client_id={c.client_id!r}, "
            f"client_secret={mask(c.client_secret)}, grant={c.grant!r})"
        )

    def close(self) -> None:
        """Release the HTTP connections."""
        self.session.close()

    def __enter__(self) -> "ZohoClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------- metadata

    def list_modules(self) -> list[dict[str, Any]]:
        """Every module of the org as Zoho describes it (``/settings/modules``)."""
        answer = self.http.get(
            "/settings/modules", Need("ZohoCRM.settings.modules.READ", "the modules metadata")
        )
        return list((answer.body or {}).get("modules") or [])

    def list_fields(self, module: str) -> list[dict[str, Any]]:
        """The fields metadata of ``module`` (``/settings/fields?module=``); empty when Zoho answers 204."""
        answer = self.http.get(
            "/settings/fields",
            Need("ZohoCRM.settings.fields.READ", f"the fields metadata of {module}"),
            params={"module": module},
        )
        return list((answer.body or {}).get("fields") or [])

    def count(self, module: str, modified_since: datetime | None = None) -> int:
        """Zoho's record count of ``module`` (refreshed by Zoho with a few minutes' delay).

        ``modified_since`` counts only records with ``Modified_Time >= modified_since``: the synced history
        starts at the anchor date, so a count of the whole module could never match the table.
        """
        params: dict[str, str] = {}
        if modified_since is not None:
            params["criteria"] = f"(Modified_Time:greater_equal:{header_datetime(modified_since)})"
        answer = self.http.get(
            f"/{module}/actions/count",
            Need("ZohoSearch.securesearch.READ", f"the record count of {module}"),
            params=params,
        )
        return int((answer.body or {}).get("count") or 0)

    def org(self) -> dict[str, Any]:
        """The organisation as Zoho describes it (``/org``): time zone, currency, ``license_details``."""
        answer = self.http.get("/org", Need("ZohoCRM.org.READ", "the organisation's details"))
        rows = (answer.body or {}).get("org") or [{}]
        return dict(rows[0])

    def edition_concurrency(self) -> int:
        """Calls in flight the org's edition allows (docs/zoho-crm-api.md §6.3); 5 when Zoho does not say.

        One call per org and process (remembered), and none when the token lacks ``ZohoCRM.org.READ``: the
        lowest figure is the safe answer then. Any other failure of this optional call (an error answer that
        outlived the retries, a body that is not the documented shape) also falls back to the lowest figure,
        with one log line, and the sync goes on; it is not remembered, so the next client asks again. Only a
        failure of the run's own credentials (:class:`ZohoAuthError`) stops the run: every later call would
        fail the same way.
        """
        known = _EDITION_CONCURRENCY_SEEN.get(self._org_key)
        if known is None:
            try:
                known = edition_concurrency(self.org().get("license_details") or {})
            except ZohoPermissionError:
                known = DEFAULT_CONCURRENCY
            except (ZohoAPIError, ValueError, TypeError, AttributeError) as error:
                log.warning(
                    "The org's edition could not be read from /org (%s); using the lowest concurrency, %d.",
                    " ".join(str(error).split()) or type(error).__name__,
                    DEFAULT_CONCURRENCY,
                )
                return DEFAULT_CONCURRENCY
            _EDITION_CONCURRENCY_SEEN[self._org_key] = known
        return known

    def concurrency(self) -> int:
        """Calls this process keeps in flight: configured, else the edition's share (see ``ClientConfig``)."""
        if self._concurrency is None:
            share = self.config.concurrency_share
            self._concurrency = max(1, self.edition_concurrency() // share)
            self.limiter = shared_limiter(
                self._org_key, self.config.requests_per_second, self._concurrency, self._sub_concurrency
            )
            self.http.limiter = self.limiter
        return self._concurrency

    # ------------------------------------------------------------------------------------------------ records

    def iter_records(
        self,
        module: str,
        start: datetime,
        end: datetime,
        fields: Sequence[str],
        field_metadata: Sequence[dict[str, Any]] = (),
    ) -> Iterator[list[Record]]:
        """Pages of records with ``start <= Modified_Time < end``, each holding ``fields`` + ``id``, lazily.

        Complete whatever the field count (passes of ≤50 joined on ``id``) or window size (split in time past
        the page-token cap). A window of more than a page is read in concurrent time slices, as many as this
        process's share of the org's concurrency allows (:mod:`zoho_dagster.client.slices`); pages then come
        in no particular order. Naive datetimes are taken as UTC. With ``field_metadata`` (the module's
        fields), fields that do not fit the records API passes are read with COQL where their type allows,
        and rich-text values the list API cut are read whole (:mod:`zoho_dagster.client.full_text`).
        """
        need = Need(module_scope(module), f"the {module} records")
        coql_fields = same_shape_fields(field_metadata) if self.config.coql_passes else []
        passes = len(plan_passes(fields, coql_fields))
        parallelism = min(passes, self.config.max_concurrency or passes)
        window = WindowReader(
            self.http,
            module,
            fields,
            start,
            end,
            need,
            parallelism=parallelism,
            coql_fields=coql_fields,
            full_text_fields=self.whole_text_fields(field_metadata, fields),
        )
        reader = SlicedReader(
            window,
            lambda: self._slice_workers(window),
            big_window=self._bulk_for_rest if self.config.bulk_threshold > 0 else None,
        )
        for page in reader:
            self.last_window_slices = reader.slices_read
            yield page
        self.last_window_slices = reader.slices_read

    def whole_text_fields(
        self, field_metadata: Sequence[Mapping[str, Any]], wanted: Collection[str]
    ) -> list[str]:
        """The rich-text fields of ``wanted`` to read whole where a list cut them: none when
        ``whole_rich_text`` is off (the read then says once that such values stay as listed)."""
        rich = rich_text_fields(field_metadata, wanted)
        if rich and not self.config.whole_rich_text:
            log.info(
                "%s kept as the route gives it (whole_rich_text off): a list answer cuts it at %d chars.",
                ", ".join(rich),
                LIST_TEXT_LIMIT,
            )
            return []
        return rich

    def _bulk_for_rest(self, window: WindowReader) -> Iterator[list[Record]] | None:
        """Bulk Read for the rest of ``window`` when it holds more than ``bulk_threshold`` records, else None.

        Asked once the first page is in: the density read so far must make the threshold plausible before
        any count is spent, so mid-size windows pay nothing. Then Zoho's count decides (a count of records
        modified since an instant; two of them bound the rest of the window), and the rest of the window is
        taken from ``window`` at the second after its progress. It is read in chunks of at most 200,000
        records each, found by halving in time with counts (a job's ``page`` is an offset, which a deletion
        between two jobs of one criteria would shift), each chunk a Bulk Read job joined with the fields it
        cannot export and the records it may leave out (:mod:`zoho_dagster.client.bulk_join`): a field Bulk
        Read cannot export no longer keeps the window on the records API, unless it can export none.
        """
        threshold = self.config.bulk_threshold
        module = window.module
        if module in BULK_UNSERVED or window.remaining_estimate() * 4 < threshold:
            return None
        counts = _Counts(self, module)
        progress = window.progress()
        if counts.between(progress, window.end) <= threshold:
            return None
        metadata = self.list_fields(module)
        wanted = {name for name in window.fields if name not in ("id", CURSOR_FIELD)}
        exportable, refused = bulk_exportable([meta for meta in metadata if meta.get("api_name") in wanted])
        if wanted and not exportable:
            log.info("%s: not read with Bulk Read: it can export none of the fields.", module)
            return None
        if refused:
            log.info("%s: Bulk Read cannot export %s; another route reads them.", module, ", ".join(refused))
        rest = window.split(fraction=0.0)
        if rest is None:
            return None
        chunks = counts.chunks(rest.start, rest.end, JOB_PAGE_SIZE)
        log.info("%s: the rest of the window is read with %d Bulk Read job(s).", module, len(chunks))
        return self._bulk_pages(rest, chunks, metadata)

    def _bulk_pages(
        self,
        rest: WindowReader,
        chunks: list[tuple[datetime, datetime]],
        metadata: list[dict[str, Any]],
    ) -> Iterator[list[Record]]:
        """Pages of each chunk's Bulk Read joined with the other routes (:class:`BulkJoin`).

        A field Bulk Read refuses before a chunk's job (the tags or layouts API refused,
        ``FIELD_NOT_AVAILABLE`` at the job's creation) goes to the other route for this chunk and the next;
        if Zoho refuses Bulk Read itself, the records API reads the rest of the window.
        """
        module = rest.module
        by_name = {str(meta.get("api_name")): meta for meta in metadata}
        wanted = [name for name in rest.fields if name in by_name and name not in ("id", CURSOR_FIELD)]
        bulk_fields = set(bulk_exportable([by_name[name] for name in wanted])[0])
        layout_fields = [name for name in wanted if by_name[name].get("data_type") == LAYOUT_TYPE]
        layouts = self._layouts(module, layout_fields) if bulk_fields & set(layout_fields) else None
        if layouts is None:
            bulk_fields -= set(layout_fields)
        coql_fields = same_shape_fields(metadata) if self.config.coql_passes else []
        switch = CoqlSwitch()
        tags: Sequence[Mapping[str, Any]] | None = None  # read by the first job's reader, then handed on
        done_until = rest.start
        try:
            for start, end in chunks:
                while True:
                    join = BulkJoin(
                        self.http,
                        module,
                        rest.fields,
                        start,
                        end,
                        rest.need,
                        fields_metadata=metadata,
                        full_text_fields=self.whole_text_fields(metadata, wanted),
                        bulk_fields=sorted(bulk_fields),
                        coql_fields=coql_fields,
                        coql_switch=switch,
                        sliced=self._sliced,
                        bulk_options={"layouts_metadata": layouts, "tags_metadata": tags},
                    )
                    try:
                        yield from join
                    except BulkUnavailable as error:
                        refused = {name.partition(".")[0] for name in error.fields} & bulk_fields
                        if join.emitted or not refused:
                            raise
                        log.info("%s: %s; another route reads %s.", module, error, ", ".join(sorted(refused)))
                        bulk_fields -= refused
                        tags = join.bulk.tags_metadata
                        continue
                    break
                tags = join.bulk.tags_metadata
                done_until = end
        except BulkUnavailable as error:
            log.info("%s: Bulk Read refused (%s); reading the rest with the records API.", rest.module, error)
            fallback = rest.sibling(done_until, rest.end)
            yield from SlicedReader(fallback, lambda: self._slice_workers(fallback))

    def _layouts(self, module: str, fields: Sequence[str]) -> list[Mapping[str, Any]] | None:
        """``/settings/layouts`` of ``module``, read once per client (a run); ``None`` when Zoho refuses it,
        and then the layout fields are read by another route (docs/zoho-crm-api.md §4.1)."""
        if module not in self._layouts_seen:
            try:
                self._layouts_seen[module] = read_layouts(self.http, module, fields)
            except BulkUnavailable as refusal:
                log.info("%s: %s", module, refusal)
                self._layouts_seen[module] = None
        return self._layouts_seen[module]

    def _sliced(self, window: WindowReader) -> SlicedReader:
        """``window`` read in concurrent slices, as ``iter_records`` reads a window below the threshold."""
        return SlicedReader(window, lambda: self._slice_workers(window))

    def _slice_workers(self, window: WindowReader) -> int:
        """Concurrent slices for a window: the sorted reads in flight allowed, over the chains per slice
        that keep a slot busy (its records API passes; a COQL pass calls a tenth as often)."""
        in_flight = min(self.concurrency(), self._sub_concurrency)
        return max(1, in_flight // window.call_weight)

    def changed_since(self, module: str, since: datetime) -> bool:
        """Whether any record of ``module`` was modified at or after ``since``: one call, 304/204 mean no.
        Converted records and records awaiting approval count too (:mod:`zoho_dagster.client.visibility`)."""
        answer = self.http.get(
            f"/{module}",
            Need(module_scope(module), f"the {module} records"),
            params={"fields": CURSOR_FIELD, "per_page": 1, **EVERY_RECORD},
            headers={"If-Modified-Since": header_datetime(since)},
        )
        return bool(answer.body and answer.body.get("data"))

    def iter_deleted(self, module: str, since: datetime | None = None) -> Iterator[list[dict[str, Any]]]:
        """Pages of ``/{module}/deleted?type=all`` entries (recycle bin and permanent), newer than ``since``.
        """
        headers = {"If-Modified-Since": header_datetime(since)} if since is not None else {}
        return self._paged(
            f"/{module}/deleted",
            "data",
            Need(module_scope(module), f"the deleted {module} records"),
            {"type": "all"},
            headers,
        )

    def iter_users(self) -> Iterator[list[dict[str, Any]]]:
        """Pages of every user of the org (``/users?type=AllUsers``; root key ``users``)."""
        return self._paged(
            "/users", "users", Need("ZohoCRM.users.READ", "the users"), {"type": "AllUsers"}, {}
        )

    def _paged(
        self, path: str, root: str, need: Need, params: dict[str, Any], headers: dict[str, str]
    ) -> Iterator[list[dict[str, Any]]]:
        """Follow ``page`` until ``more_records`` is false (these endpoints have no page tokens)."""
        page = 1
        while True:
            try:
                answer: Answer = self.http.get(
                    path, need, params={**params, "page": page, "per_page": PER_PAGE}, headers=headers
                )
            except ZohoAPIError as error:
                if error.code == PAGE_LIMIT_CODE:
                    raise ZohoAPIError(
                        f"GET {path} has more than {(page - 1) * PER_PAGE} entries, the most Zoho pages "
                        "without a page token; read it more often (a later `since`) so each read stays "
                        "under the limit.",
                        code=error.code,
                        status=error.status,
                    ) from None
                raise
            body = answer.body or {}
            rows = list(body.get(root) or [])
            if rows:
                yield rows
            if not rows or not (body.get("info") or {}).get("more_records"):
                return
            page += 1

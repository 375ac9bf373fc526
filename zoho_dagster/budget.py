"""The daily credit budget: an incremental run estimates its cost before fetching, and stops if it won't fit.

Why: Zoho's credits are a rolling 24-hour allowance shared by every integration of the org
(docs/zoho-crm-api.md §6.1); a backfill that exhausts them also stops the org's other integrations for up to
a day. With ``ZOHO_CRM_DAILY_CREDIT_BUDGET`` set, each incremental run asks Zoho how many records its window
holds (the count API, 1 credit, §3.5; a second count when the window ends in the past, since a count runs
from an instant to now), turns that into credits with the pricing of the reference, and compares the sum
with what is left of the budget: the budget less the credits the ledger
(:mod:`zoho_dagster.postgres.credit_ledger`) recorded in the last 24 hours. Without a budget nothing is
counted, asked or estimated.

**The estimate** (docs/design.md §3, "Credit budget"), for N records in the window and F listable fields:

- what the run already spent before the estimate: the fields metadata and the count(s), 1 credit each;
- records API: ceil(L / 49) passes (each call carries at most 50 fields, §7.2, one of them
  ``Modified_Time``), for the L fields COQL may not read (``client/coql.py``), filled up with the others, each
  of max(1, ceil(N / 200)) pages, 1 credit a page (§2.2); the fields left over go to COQL passes of at most
  48 (:mod:`zoho_dagster.client.coql_pass`), each 1 credit for its first page of 200 and 3 per further page of
  2,000 (§3.8); with ``ZOHO_CRM_COQL_PASSES=false``, ceil(F' / 49) records API passes for the F' fields
  (``id`` and ``Modified_Time`` apart);
- or, when N is above ``ZOHO_CRM_BULK_THRESHOLD`` and Bulk Read can export any of the fields, the mixed
  plan of :mod:`zoho_dagster.client.bulk_join` (§4, §4.1), in ceil(N / 200,000) chunks of one job each:
  - Bulk Read: the first page of each pass, 2 counts, the fields metadata, the tags list and the layouts
    list (1 each, when ``Tag`` or a layout field is among the fields), then per job 1 create + 20 status
    polls + 1 download = 22 credits. The credit cost of Bulk Read is UNCONFIRMED (§4); the simulator and the
    client count 1 per call. 20 polls is what the client's growing pause (1 s, then 1.5 times longer each
    poll, at most 30 s) makes of a job that takes about six minutes;
  - the fields a CSV cannot carry (``bulk_exportable``: rich text, uploads, …), read over the same chunks:
    3 credits per 2,000 records when COQL may read all of them (one COQL chain), else ceil(R / 49) records
    API passes of max(1, ceil(N / 200)) pages for the R such fields;
  - the records a job may leave out (converted, awaiting approval: §4.1), read whole with the records API,
    two sets per chunk: priced at their floor, one page per records API pass (ceil(F / 49)) per set per
    chunk. No API counts them before they are read (whether the count API includes them is UNCONFIRMED), so
    a module with H such records spends up to about 2 * ceil(F / 49) * ceil(H / 200) more, plus one
    single-record read for each of them whose rich text the list cut (``client/full_text.py``; the CSV's
    rich text is whole, theirs comes from the records API): for Leads, of which a third may be converted,
    this is the largest part of the gap between estimate and spend;
- rich text (``client/full_text.py``): one single-record read per record whose rich-text value the list API
  cut at 500 characters; how many pass 500 is unknown before they are read, so ceil(N / 4) is assumed
  (nothing when Bulk Read's CSV carries the rich-text fields whole: the hidden sets' reads above);
- child tables (subforms, multi-select and multi-user lookups): ceil(N / 50) COQL calls per field, batches
  of 50 parents at 1 credit for up to 200 rows (§3.8), plus the subform module's fields metadata (1);
- Deals: 1 per deal for its stage history (one related-list call per deal);
- deletions: 1 (``/deleted`` since the window's start, §3.6).

Slices read in parallel may add one partial page per pass each (docs/design.md §3, "Slices"), and records
modified while the window is read a few more (on the Bulk Read plan: ``ids=`` completions, 1 per 100 such
records, and the hidden sets above): the estimate is a floor, not a bound.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import dagster as dg

from zoho_dagster.client import (
    LIST_UNSUPPORTED_TYPES,
    ZohoClient,
    bulk_exportable,
    plan_passes,
    same_shape_fields,
)
from zoho_dagster.client.bulk import LAYOUT_TYPE
from zoho_dagster.client.client import BULK_UNSERVED
from zoho_dagster.client.coql import COQL_COLUMNS, COQL_FIRST_PAGE, COQL_NEXT_PAGE, coql_cost
from zoho_dagster.client.full_text import rich_text_fields
from zoho_dagster.client.visibility import HIDDEN_SETS
from zoho_dagster.postgres import credit_ledger
from zoho_dagster.postgres.database import resolve_database_url
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster.resource import IO_MANAGER_KEY, ZohoCRMResource
from zoho_dagster.settings import DAILY_CREDIT_BUDGET

ESTIMATE_KEY = "zoho/credits_estimated"
PER_PAGE = 200
"""Records per page of the records API (docs/zoho-crm-api.md §2.2)."""
FIELDS_PER_PASS = 49
"""At most 50 fields per call (§7.2), one of which is ``Modified_Time`` in every pass."""
COQL_PARENTS = 50
"""Parents per COQL batch: the ``in`` limit (§3.8)."""
BULK_JOB_RECORDS = 200_000
"""Records per Bulk Read job (§4)."""
BULK_POLLS_PER_JOB = 20
BULK_CREDITS_PER_JOB = 1 + BULK_POLLS_PER_JOB + 1
"""Create, status polls and download of one job (module docstring)."""
STAGE_HISTORY_MODULE = "Deals"


@dataclass(frozen=True)
class Estimate:
    """What a run of one window would cost, in Zoho API credits, and the figures it was worked out from."""

    records: int
    passes: int
    bulk_jobs: int
    parts: Mapping[str, int] = field(default_factory=dict)

    @property
    def credits(self) -> int:
        return sum(self.parts.values())


def _passes(fields: Sequence[Mapping[str, Any]], coql_passes: bool) -> tuple[int, int]:
    """Records API passes and COQL passes of a window of ``fields`` (the listable ones)."""
    names = [str(f["api_name"]) for f in fields if f.get("api_name")]
    plan = plan_passes(names, same_shape_fields(fields) if coql_passes else ())
    coql = sum(1 for each in plan if each.coql)
    return len(plan) - coql, coql


def _coql_pass_credits(records: int) -> int:
    """A COQL pass over ``records``: a first page of 200 (1 credit), then pages of 2,000 (3 each), the page
    sizes :mod:`zoho_dagster.client.coql_pass` asks for."""
    later_pages = math.ceil(max(0, records - COQL_FIRST_PAGE) / COQL_NEXT_PAGE)
    return coql_cost(COQL_FIRST_PAGE) + later_pages * coql_cost(COQL_NEXT_PAGE)


def _bulk_plan(module: str, listable: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]] | None:
    """The fields a Bulk Read job exports and those another route reads, as ``ZohoClient._bulk_for_rest``
    splits them; ``None`` when the module is not read with Bulk Read at all (Notes, or no exportable field).
    """
    if module in BULK_UNSERVED:
        return None
    wanted = [f for f in listable if f.get("api_name") not in ("id", "Modified_Time")]
    exported, others = bulk_exportable(wanted)
    return (exported, others) if exported or not wanted else None


def _other_route_credits(
    others: Sequence[str], listable: Sequence[Mapping[str, Any]], records: int, chunks: int, coql: bool
) -> int:
    """The fields a CSV cannot carry, over ``chunks`` chunks of ``records`` in all (client/bulk_join.py): one
    COQL chain of pages of 2,000 when COQL may read every one of them, else records API passes."""
    if not others:
        return 0
    readable = set(same_shape_fields(listable)) if coql else set()
    if readable.issuperset(others) and len(others) <= COQL_COLUMNS - 2:
        return max(chunks, math.ceil(records / COQL_NEXT_PAGE)) * coql_cost(COQL_NEXT_PAGE)
    passes = math.ceil(len(others) / FIELDS_PER_PASS)
    return passes * max(chunks, math.ceil(records / PER_PAGE))


def estimate_credits(
    module: str,
    records: int,
    metadata: Sequence[Mapping[str, Any]],
    bulk_threshold: int,
    already_spent: int = 0,
    coql_passes: bool = True,
    whole_rich_text: bool = True,
) -> Estimate:
    """The credits a run of ``records`` records of ``module`` costs (module docstring), given its fields
    ``metadata`` (all of them: the listable ones decide the passes, the others the child tables)."""
    listable = [f for f in metadata if f.get("data_type") not in LIST_UNSUPPORTED_TYPES]
    records_passes, coql_passes_count = _passes(listable, coql_passes)
    passes = records_passes + coql_passes_count
    parts = {"metadata_and_counts": already_spent}
    jobs = 0
    bulk = _bulk_plan(module, listable) if 0 < bulk_threshold < records else None
    if bulk is not None:
        exported, others = bulk
        jobs = math.ceil(records / BULK_JOB_RECORDS)
        tags = "Tag" in exported
        layouts = any(f.get("data_type") == LAYOUT_TYPE for f in listable if f.get("api_name") in exported)
        parts["records"] = passes + 2 + 1 + int(tags) + int(layouts) + jobs * BULK_CREDITS_PER_JOB
        parts["other_fields"] = _other_route_credits(others, listable, records, jobs, coql_passes)
        hidden_passes = math.ceil(max(1, len(listable) - 1) / FIELDS_PER_PASS)
        parts["hidden_sets"] = len(HIDDEN_SETS) * hidden_passes * jobs
    else:
        parts["records"] = records_passes * max(1, math.ceil(records / PER_PAGE))
        parts["records"] += coql_passes_count * _coql_pass_credits(records)
    rich = rich_text_fields(listable, {str(f.get("api_name")) for f in listable})
    if records and rich and whole_rich_text and (bulk is None or any(name in bulk[1] for name in rich)):
        # At most one single-record read per record whose rich text the list API cut (client/full_text.py);
        # how many values pass 500 characters is not known before they are read: a quarter is assumed.
        parts["rich_text"] = math.ceil(records / 4)
    children = [f for f in metadata if f.get("data_type") in LIST_UNSUPPORTED_TYPES]
    if records and children:
        batches = math.ceil(records / COQL_PARENTS)
        subforms = sum(1 for f in children if f.get("data_type") == "subform")
        parts["child_tables"] = len(children) * batches + subforms
    if records and module == STAGE_HISTORY_MODULE:
        parts["stage_history"] = records
    parts["deletions"] = 1
    return Estimate(records=records, passes=passes, bulk_jobs=jobs, parts=parts)


def window_count(client: ZohoClient, module: str, start: datetime, end: datetime) -> int:
    """Records with ``start <= Modified_Time < end`` by Zoho's count API: 1 call, 2 when ``end`` is past."""
    since_start = client.count(module, modified_since=start)
    if end >= datetime.now(timezone.utc) or since_start == 0:
        return since_start
    return max(0, since_start - client.count(module, modified_since=end))


def refusal(stream: str, estimate: int, budget: int, spent: int) -> str:
    """The one sentence of a run the budget stops: both numbers, and the three ways out."""
    left = max(0, budget - spent)
    return (
        f"This run of {stream} would spend about {estimate:,} Zoho API credits but only {left:,} of the "
        f"daily budget of {budget:,} are left ({spent:,} spent in the last 24 hours); raise "
        f"{DAILY_CREDIT_BUDGET}, wait until earlier runs leave Zoho's rolling 24-hour window, or sync a "
        "narrower window (fewer partitions)."
    )


def _database_url(context: dg.AssetExecutionContext, zoho_crm: ZohoCRMResource) -> str:
    """The IO manager's database (where runs record their credits), else the resource's, else the default."""
    io_manager = getattr(context.resources, IO_MANAGER_KEY, None)
    url = getattr(io_manager, "database_url", None) or zoho_crm.database_url
    return resolve_database_url(url, context.log.info)


def check_credit_budget(
    context: dg.AssetExecutionContext,
    zoho_crm: ZohoCRMResource,
    client: ZohoClient,
    stream: str,
    module: str,
    window: tuple[datetime, datetime],
    metadata: Sequence[Mapping[str, Any]],
) -> Estimate | None:
    """Stop the run before it fetches a record if its estimate exceeds what is left of the daily budget.

    Does nothing (not even a count) without ``ZOHO_CRM_DAILY_CREDIT_BUDGET``. Otherwise the estimate goes in
    the materialization's metadata (``zoho/credits_estimated``, beside the ``api_credits`` actually spent),
    or, when it does not fit, the run fails with :func:`refusal`'s sentence, after recording what it spent.
    """
    settings = zoho_crm.settings()
    budget = settings.daily_credit_budget
    if budget is None:
        return None
    records = window_count(client, module, *window)
    estimate = estimate_credits(
        module,
        records,
        metadata,
        settings.bulk_threshold,
        client.stats.credits,
        settings.coql_passes,
        settings.whole_rich_text,
    )
    engine = make_engine(_database_url(context, zoho_crm))
    spent = credit_ledger.spent_since(engine)
    facts = {
        ESTIMATE_KEY: estimate.credits,
        "zoho/credit_budget": budget,
        "zoho/credits_spent_24h": spent,
        "zoho/records_in_window": records,
    }
    if estimate.credits > budget - spent:
        credit_ledger.record(engine, context.run_id, stream, client.stats.credits)
        raise dg.Failure(
            description=refusal(stream, estimate.credits, budget, spent),
            metadata={**facts, "zoho/estimate_parts": dg.MetadataValue.json(dict(estimate.parts))},
            allow_retries=False,
        )
    context.add_output_metadata(facts)
    context.log.info(
        f"{stream}: about {estimate.credits:,} credits for {records:,} records "
        f"({budget - spent:,} of the daily budget of {budget:,} left)."
    )
    return estimate

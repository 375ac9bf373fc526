"""Credits and calls of a Leads backfill through Bulk Read, with and without the fields a CSV cannot carry.

Why: a field Bulk Read cannot export (``Layout`` when the layouts API is refused, uploads) no longer puts a
window on the records API: the job exports the rest and another route reads those fields over the same
chunks (client/bulk_join.py), and the records a job may leave out (converted, awaiting approval) are read
with the records API in every case. This prints what that costs, side by side in one run, on one simulator:

- **all-exportable**: Leads' listable fields less ``Layout`` and the rich-text field ``Rich_Description__c``;
- **layout + rich text**: every listable field. ``Layout`` rides in the CSV (its id, named by one
  ``/settings/layouts`` call); rich text rides in the CSV whole, and the hidden sets' values the list API
  cut at 500 characters are read again whole, one single-record read each (docs/zoho-crm-api.md §4.1);
- **layout + rich text as listed**: the same fields with ``whole_rich_text`` off
  (``ZOHO_CRM_WHOLE_RICH_TEXT=false``): the hidden sets' rich text stays as the list gave it.

Each case reads the widest window through ``ZohoClient.iter_records`` (Bulk Read above 100,000 records, as
by default) in a fresh process, consuming pages like the IO manager and holding nothing, so its ``ru_maxrss``
is its own peak; the simulator's counters are reset before each case. The target is each other case within
2x the first's credits. Before the cases, the simulator renders every lead once and keeps it (``warm``; not
timed), as Zoho serves data at rest. Run by hand, never as a timed test::

    .venv/bin/python benchmarks/bulk_credits.py                      # 1,000,000 Leads (about 30 minutes)
    .venv/bin/python benchmarks/bulk_credits.py --records 200000     # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

RICH = "Rich_Description__c"
LAYOUT = "Layout"
CASES = ("all-exportable", "layout + rich text", "layout + rich text as listed")
UNLIMITED_CREDITS = 10**9
CONNECTION_VARIABLE = "ZOHO_DAGSTER_BENCH_CONNECTION"
WIDTHS = (7, 10, 8, 9, 6, 8, 7)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="Leads in the simulated org")
    parser.add_argument("--concurrency", type=int, default=10, help="client requests in flight")
    parser.add_argument("--threshold", type=int, default=100_000, help="ZOHO_CRM_BULK_THRESHOLD")
    parser.add_argument("--no-warm", action="store_true", help="do not render the leads before the cases")
    parser.add_argument("--days", type=int, default=401, help="window: the last N days to tomorrow")
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # worker mode
    return parser.parse_args(argv)


def read_case(args: argparse.Namespace) -> dict[str, Any]:
    """Worker: one case's read of the widest window; its figures as JSON on stdout."""
    from zoho_dagster.client import ClientConfig, Credentials, RetryPolicy, ZohoClient, listable_fields

    org = json.loads(os.environ[CONNECTION_VARIABLE])
    client = ZohoClient(
        ClientConfig(
            credentials=Credentials(
                client_id=org["client_id"],
                client_secret=org["client_secret"],
                accounts_url=org["accounts_url"],
                region=org["region"],
                soid=org["soid"],
            ),
            api_domain=org["api_domain"],
            max_concurrency=args.concurrency,
            bulk_threshold=args.threshold,
            whole_rich_text=args.case != CASES[2],
            policy=RetryPolicy(),
        )
    )
    metadata = client.list_fields("Leads")
    fields = [str(meta["api_name"]) for meta in listable_fields(metadata)]
    if args.case == CASES[0]:
        fields = [name for name in fields if name not in (LAYOUT, RICH)]
    client.stats.calls = client.stats.credits = 0
    end = datetime.now(timezone.utc) + timedelta(days=1)
    start = end - timedelta(days=args.days + 1)  # a backfill from the anchor: the simulator's ~400 days
    began = time.perf_counter()
    records = 0
    ids: set[int] = set()
    for page in client.iter_records("Leads", start, end, fields, metadata):
        records += len(page)
        ids.update(int(record["id"]) for record in page)
    elapsed = time.perf_counter() - began
    return {
        "case": args.case,
        "fields": len(fields),
        "records": records,
        "distinct_ids": len(ids),
        "seconds": round(elapsed, 1),
        "client_calls": client.stats.calls,
        "client_credits": client.stats.credits,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run_case(args: argparse.Namespace, case: str, org: dict[str, Any]) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--case",
        case,
        "--concurrency",
        str(args.concurrency),
        "--threshold",
        str(args.threshold),
        "--days",
        str(args.days),
    ]
    environment = {**os.environ, CONNECTION_VARIABLE: json.dumps(org)}  # not in argv: it holds a secret
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=environment)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.case:
        print(json.dumps(read_case(args)))
        return 0
    from zoho_dagster.simulator import run_simulator

    results: list[dict[str, Any]] = []
    with run_simulator(records=args.records) as sim:
        sim.control.set_limits(credits_per_day=UNLIMITED_CREDITS)
        truth_live = None
        if not args.no_warm:
            began = time.monotonic()
            truth_live = sim.control.warm("Leads")
            print(f"simulator warmed in {time.monotonic() - began:.0f} s ({truth_live:,} leads at rest)")
        for case in CASES:
            sim.control.reset_stats()
            figures = run_case(args, case, sim.primary)
            stats = sim.control.stats()
            by_endpoint = stats["by_endpoint"]
            tokens = by_endpoint.get("POST /oauth/v2/token", 0)
            figures["simulator_requests"] = stats["total_requests"] - tokens
            figures["simulator_credits"] = stats["total_credits"]
            figures["bulk_jobs"] = by_endpoint.get("POST /crm/bulk/v6/read", 0)
            figures["records_api_calls"] = by_endpoint.get("GET /crm/v6/Leads", 0)
            figures["coql_calls"] = by_endpoint.get("POST /crm/v6/coql", 0)
            figures["layouts_calls"] = by_endpoint.get("GET /crm/v6/settings/layouts", 0)
            results.append(figures)
            print(json.dumps(figures), flush=True)
    base = results[0]
    print(f"\n{args.records:,} Leads, Bulk Read above {args.threshold:,}, {args.concurrency} calls in flight")
    header = ("case", "fields", "records", "calls", "credits", "jobs", "RSS MB", "s")
    print(f"{header[0]:<30}" + "".join(f"{name:>{w}}" for name, w in zip(header[1:], WIDTHS, strict=True)))
    for row in results:
        print(
            f"{row['case']:<30}{row['fields']:>7}{row['records']:>10,}{row['client_calls']:>8,}"
            f"{row['client_credits']:>9,}{row['bulk_jobs']:>6}{row['peak_rss_mb']:>8.0f}{row['seconds']:>7.0f}"
        )
    for mixed in results[1:]:
        ratio_credits = mixed["client_credits"] / max(1, base["client_credits"])
        ratio_calls = mixed["client_calls"] / max(1, base["client_calls"])
        verdict = "met" if ratio_credits <= 2 else "NOT met"
        print(
            f"ratio ({mixed['case']} / all-exportable): credits {ratio_credits:.2f}x, "
            f"calls {ratio_calls:.2f}x; target within 2x {verdict}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

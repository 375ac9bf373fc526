"""Benchmark of the client's window read: throughput, API calls and credits, peak memory.

Starts the simulator in a subprocess with ``--records N`` Leads (every field, so more than one 50-field pass),
reads the widest window through ``ZohoClient.iter_records`` and consumes it page by page like the IO manager,
holding nothing. The token stays in the client's in-memory cache (no database is needed). Prints records/s,
calls and credits per 10,000 records against their minimum for the pass plan (records API passes of 200 a
page, COQL passes of 200 then 2,000 a call; ``--no-coql`` reads every pass with the records API, as
``ZOHO_CRM_COQL_PASSES=false`` does), tracemalloc's peak and ru_maxrss.

    .venv/bin/python benchmarks/client_read.py [--records 200000] [--rps 100] [--concurrency 3] [--no-coql]

Run by hand and in CI as a smoke (small --records), never as a timed test.
"""

import argparse
import math
import resource
import sys
import time
import tracemalloc
from datetime import datetime, timedelta, timezone

from zoho_dagster.client import (
    ClientConfig,
    Credentials,
    RetryPolicy,
    ZohoClient,
    listable_fields,
    plan_passes,
    same_shape_fields,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000, help="Leads in the simulated org")
    parser.add_argument("--rps", type=float, default=100.0, help="client requests per second (Sling: 5)")
    parser.add_argument("--concurrency", type=int, default=3, help="client requests in flight")
    parser.add_argument("--latency-ms", type=int, default=0, help="simulated server latency per call")
    parser.add_argument("--module", default="Leads")
    parser.add_argument("--no-coql", action="store_true", help="records API passes only")
    parser.add_argument(
        "--days",
        type=int,
        default=400,
        help="window: the last N days to tomorrow, as a backfill from the anchor reads "
        "(the simulator's records span the last ~400 days)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from zoho_dagster.simulator import run_simulator

    with run_simulator(records=args.records, latency_ms=args.latency_ms) as sim:
        org = sim.primary
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
                requests_per_second=args.rps,
                max_concurrency=args.concurrency,
                policy=RetryPolicy(),
                coql_passes=not args.no_coql,
            )
        )
        metadata = listable_fields(client.list_fields(args.module))
        fields = [field["api_name"] for field in metadata]
        client.stats.calls = client.stats.credits = 0
        end = datetime.now(timezone.utc) + timedelta(days=1)
        start = end - timedelta(days=args.days + 1)
        tracemalloc.start()
        began = time.perf_counter()
        records = pages = 0
        for page in client.iter_records(args.module, start, end, fields, metadata):
            records += len(page)
            pages += 1
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        server_stats = sim.control.stats()
    plan = plan_passes(fields, [] if args.no_coql else same_shape_fields(metadata))
    coql_passes = sum(1 for each in plan if each.coql)
    passes = len(plan) - coql_passes
    minimum = passes * math.ceil(records / 200) + coql_passes * (1 + math.ceil(max(0, records - 200) / 2000))
    per_10k = 10_000 / max(records, 1)
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"module {args.module}: {records} records, {len(fields)} fields in {passes} records API and "
        f"{coql_passes} COQL passes, {pages} pages"
    )
    print(f"limits: {args.rps:g} requests/s, {args.concurrency} in flight, latency {args.latency_ms} ms")
    print(f"time {elapsed:.1f} s -> {records / elapsed:,.0f} records/s (tracemalloc on)")
    print(
        f"API calls {client.stats.calls} ({client.stats.calls * per_10k:.1f} per 10k records; "
        f"minimum {minimum})"
    )
    print(
        f"credits {client.stats.credits} ({client.stats.credits * per_10k:.1f} per 10k records); "
        f"simulator counted {server_stats['total_credits']} credits, {server_stats['token_grants']} token "
        "grant(s)"
    )
    print(f"peak memory: tracemalloc {peak / 2**20:.1f} MiB, ru_maxrss {maxrss_mb:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

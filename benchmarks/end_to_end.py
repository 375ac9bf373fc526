"""End-to-end throughput and memory of the demo sync: simulator → Dagster assets → Postgres.

Run by hand (or in CI as a smoke with a small --leads), never as a timed test::

    python benchmarks/end_to_end.py                      # the demo's default size (2,500 leads)
    python benchmarks/end_to_end.py --leads 200000       # ~1M records over all streams
    python benchmarks/end_to_end.py --tracemalloc        # also Python's own allocation peak (slower)

It starts a throw-away embedded Postgres and the simulator, syncs every stream over the whole anchor range
exactly as ``zoho-dagster demo`` does (one single-run backfill per stream), checks the result against the
simulator's truth and prints records/s, the process's peak RSS (``ru_maxrss``) and, with ``--tracemalloc``,
the tracemalloc peak, each measured after the sync and again after the verification. The client's rate
limit is the real bottleneck: 5 requests/s by default, as for Zoho.
"""

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path


def run(leads: int, requests_per_second: float, streams: list[str] | None, latency_ms: int) -> dict:
    import pgserver

    from zoho_dagster import environment
    from zoho_dagster.cli.common import point_at_simulator, simulator
    from zoho_dagster.cli.comparison import compare
    from zoho_dagster.cli.demo import sync_all
    from zoho_dagster.partitions import anchor_date
    from zoho_dagster.streams import CATALOG

    specs = [s for s in CATALOG if not streams or s.name in streams]
    tables = {s.name: f"zoho_crm.{s.name}" for s in specs}
    with tempfile.TemporaryDirectory(prefix="zd_bench_") as directory:
        server = pgserver.get_server(Path(directory), cleanup_mode="stop")
        try:
            url = server.get_uri()
            environment.export_database_url(url)
            with simulator(leads, 1, latency_ms) as running:
                point_at_simulator(running.primary)
                started = time.monotonic()
                runs = sync_all(specs, tables, requests_per_second)
                elapsed = time.monotonic() - started
                memory = _memory("sync")
                matched = compare(running, specs, tables, anchor_date(), url)
        finally:
            server.cleanup()
    rows = sum(r.rows for r in runs)
    return {
        "leads": leads,
        "streams": len(specs),
        "rows": rows,
        "seconds": round(elapsed, 1),
        "records_per_second": round(rows / elapsed, 1),
        "api_calls": sum(r.api_calls for r in runs),
        "requests_per_second_limit": requests_per_second,
        "match": matched and all(r.ok for r in runs),
        **memory,
        **_memory("with_verification"),
    }


def _memory(phase: str) -> dict:
    """Peak RSS so far and, when tracing, the tracemalloc peak since the last call (then reset).

    Measured after the sync and again after the verification: checking the result loads the simulator's whole
    truth (every record of a module as Python dicts), which costs far more memory than the sync itself.
    """
    figures = {f"{phase}_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if tracemalloc.is_tracing():
        figures[f"{phase}_tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.reset_peak()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=2500, help="leads in the simulator (default 2500)")
    parser.add_argument(
        "--requests-per-second", type=float, default=5.0, help="client rate limit (default 5)"
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="simulated API latency per request")
    parser.add_argument("--streams", nargs="*", help="only these streams (default: all)")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure the tracemalloc peak")
    args = parser.parse_args(argv)
    if args.tracemalloc:
        tracemalloc.start()
    result = run(args.leads, args.requests_per_second, args.streams, args.latency_ms)
    tracemalloc.stop()
    print(json.dumps(result))
    return 0 if result["match"] else 1


if __name__ == "__main__":
    sys.exit(main())

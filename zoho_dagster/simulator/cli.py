"""`python -m zoho_dagster.simulator`: serve, then print the connection JSON on one line (and to F)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from .server import make_server
from .state import Config, Simulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m zoho_dagster.simulator", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--records", type=int, default=2500, help="Leads in the primary org")
    parser.add_argument(
        "--latency-ms", type=int, default=0, help="sleep before answering (Zoho's round trip)"
    )
    parser.add_argument("--token-lifetime", type=int, default=3600, help="access token lifetime in seconds")
    parser.add_argument("--page-token-cap", type=int, default=100_000, help="records reachable by page_token")
    parser.add_argument("--connection-file", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = Config(
        seed=args.seed,
        records=args.records,
        latency_ms=args.latency_ms,
        token_lifetime=args.token_lifetime,
        page_token_cap=args.page_token_cap,
    )
    server, sim = make_server(args.host, args.port, lambda base: Simulator(config, base))
    text = json.dumps(sim.connection())
    if args.connection_file:
        tmp = f"{args.connection_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, args.connection_file)  # atomic: readers never see half a file
    print(text, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()

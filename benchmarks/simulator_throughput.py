"""Simulator throughput: 200-record pages of Leads with 50 fields per second, keep-alive, a few threads.

The simulator must never be the bottleneck of a benchmark; this prints the figure to watch.
Run: `python benchmarks/simulator_throughput.py [--threads 4] [--seconds 10] [--records 20000]`.
"""

from __future__ import annotations

import argparse
import threading
import time

import requests

from zoho_dagster.simulator import run_simulator


def worker(
    org: dict[str, str], token: str, fields: str, deadline: float, counts: list[int], slot: int
) -> None:
    """Page through Leads with page_token over one keep-alive session until the deadline."""
    session = requests.Session()
    headers = {"Authorization": f"Zoho-oauthtoken {token}"}
    url = f"{org['api_domain']}/crm/v6/Leads"
    params: dict[str, str] = {"fields": fields, "per_page": "200"}
    page_token: str | None = None
    while time.monotonic() < deadline:
        query = dict(params, page_token=page_token) if page_token else params
        resp = session.get(url, params=query, headers=headers, timeout=60)
        resp.raise_for_status()
        info = resp.json()["info"]
        counts[slot] += 1
        page_token = info["next_page_token"] if info["more_records"] else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    with run_simulator(records=args.records) as sim:
        org = sim.primary
        sim.control.set_limits(credits_per_day=10**9, concurrency=100)
        token = requests.post(
            f"{org['accounts_url']}/oauth/v2/token",
            timeout=30,
            data={
                "grant_type": "refresh_token",
                "client_id": org["client_id"],
                "client_secret": org["client_secret"],
                "refresh_token": org["refresh_token"],
            },
        ).json()["access_token"]
        names = requests.get(
            f"{org['api_domain']}/crm/v6/settings/fields",
            params={"module": "Leads"},
            headers={"Authorization": f"Zoho-oauthtoken {token}"},
            timeout=30,
        ).json()["fields"]
        fields = ",".join(f["api_name"] for f in names[:50])
        counts = [0] * args.threads
        deadline = time.monotonic() + args.seconds
        started = time.monotonic()
        threads = [
            threading.Thread(target=worker, args=(org, token, fields, deadline, counts, n))
            for n in range(args.threads)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        pages = sum(counts)
        print(
            f"simulator throughput: {pages / elapsed:.1f} pages/s ({pages * 200 / elapsed:.0f} records/s) "
            f"of 200 Leads x 50 fields, {args.threads} keep-alive threads, {elapsed:.1f} s"
        )


if __name__ == "__main__":
    main()

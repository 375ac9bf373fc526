"""A separate process that asks for a token through the shared Postgres cache (used by test_auth)."""

import json
import sys
import time

from zoho_dagster_tests.client.conftest import org_client


def main() -> None:
    org, database_url, start_at = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    client = org_client(org, database_url)
    time.sleep(max(0.0, start_at - time.time()))  # all twenty ask at the same instant
    client.list_modules()
    print(client.stats.calls)


if __name__ == "__main__":
    main()

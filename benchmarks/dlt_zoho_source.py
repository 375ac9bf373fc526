"""The other side of ``benchmarks/compare_dlt.py``: Zoho CRM Leads into Postgres by dlt's ``rest_api`` source.

This is the script a Python user would write instead of using zoho_dagster, kept to dlt's documented
public API and its defaults (no tuning of workers, buffers or file formats), so the comparison measures the
tool as it comes. It runs in its own process so that its wall time, like ours, includes interpreter start-up
and imports:

    ZOHO_CRM_CLIENT_ID=... ZOHO_CRM_CLIENT_SECRET=... ZOHO_CRM_SOID=ZohoCRM.<org> \\
    ZOHO_CRM_ACCOUNTS_URL=... ZOHO_CRM_API_DOMAIN=... \\
    python benchmarks/dlt_zoho_source.py --database-url postgresql://postgres@127.0.0.1:5432/db \\
        --pipelines-dir /tmp/dlt_pipelines

What it does, as a user following dlt's REST API tutorial would: one client-credentials token (Zoho's Self
Client grant), the first 50 field API names of ``/settings/fields?module=Leads`` (a list call takes at most
50 fields, and ``rest_api`` makes one call per page, so the other fields are simply not read), then one
resource paging ``/Leads`` 200 at a time sorted by ``Modified_Time`` with Zoho's ``page_token`` cursor,
merged on ``id``. It prints one JSON line: the row counts dlt normalised and each pipeline step's duration.

Zoho serves at most 100,000 records through one ``page_token`` chain (``PAGINATION_LIMIT_EXCEEDED`` after);
``rest_api``'s cursor paginator cannot start a new chain from the last ``Modified_Time``, so past 100,000
leads this script fails as its user's would, unless they write that restart themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import requests

SCOPES = "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL"
MAX_FIELDS_PER_CALL = 50  # Zoho refuses more than 50 names in one list call's ``fields``.
PER_PAGE = 200
MODULE = "Leads"


def mint_token(accounts_url: str, client_id: str, client_secret: str, soid: str) -> dict[str, Any]:
    """One client-credentials grant: a dlt user has to bring the Zoho token, dlt's auth only sends it."""
    response = requests.post(
        f"{accounts_url.rstrip('/')}/oauth/v2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "soid": soid,
            "scope": SCOPES,
        },
        timeout=60,
    )
    response.raise_for_status()
    body = dict(response.json())
    if "access_token" not in body:
        raise SystemExit(f"Zoho refused the token grant: {body.get('error', body)}")
    return body


def first_fields(api_domain: str, token: str, module: str = MODULE) -> list[str]:
    """The first 50 field API names of ``module``: all a single list call can return."""
    response = requests.get(
        f"{api_domain.rstrip('/')}/crm/v6/settings/fields",
        params={"module": module},
        headers={"Authorization": f"Zoho-oauthtoken {token}"},
        timeout=60,
    )
    response.raise_for_status()
    return [str(field["api_name"]) for field in response.json()["fields"]][:MAX_FIELDS_PER_CALL]


def leads_source(api_domain: str, token: str, fields: list[str]) -> Any:
    """dlt's ``rest_api_source`` over ``/crm/v6/Leads``: the whole configuration a user writes."""
    from dlt.sources.rest_api import rest_api_source

    return rest_api_source(
        {
            "client": {
                "base_url": f"{api_domain.rstrip('/')}/crm/v6/",
                "auth": {
                    "type": "api_key",
                    "name": "Authorization",
                    "api_key": f"Zoho-oauthtoken {token}",
                    "location": "header",
                },
            },
            "resources": [
                {
                    "name": MODULE,
                    "endpoint": {
                        "path": MODULE,
                        "params": {
                            "fields": ",".join(fields),
                            "per_page": PER_PAGE,
                            "sort_by": "Modified_Time",
                            "sort_order": "asc",
                        },
                        # Zoho's page_token: the only way past the first 2,000 records of a list.
                        "paginator": {
                            "type": "cursor",
                            "cursor_path": "info.next_page_token",
                            "cursor_param": "page_token",
                        },
                        "data_selector": "data",
                    },
                    "primary_key": "id",
                    "write_disposition": "merge",
                }
            ],
        }
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="postgresql://user@host:port/database")
    parser.add_argument("--pipelines-dir", required=True, help="dlt's working directory for this pipeline")
    parser.add_argument("--dataset", default="zoho_crm", help="schema of the destination tables")
    args = parser.parse_args(argv)
    started = time.monotonic()

    import dlt

    env = os.environ
    grant = mint_token(
        env["ZOHO_CRM_ACCOUNTS_URL"],
        env["ZOHO_CRM_CLIENT_ID"],
        env["ZOHO_CRM_CLIENT_SECRET"],
        env["ZOHO_CRM_SOID"],
    )
    api_domain = env.get("ZOHO_CRM_API_DOMAIN") or str(grant["api_domain"])
    token = str(grant["access_token"])
    fields = first_fields(api_domain, token)
    pipeline = dlt.pipeline(
        pipeline_name="zoho_crm_leads",
        destination=dlt.destinations.postgres(credentials=args.database_url),
        dataset_name=args.dataset,
        pipelines_dir=args.pipelines_dir,
    )
    pipeline.run(leads_source(api_domain, token, fields))
    trace = pipeline.last_trace
    normalize = trace.last_normalize_info
    print(
        json.dumps(
            {
                "fields": len(fields),
                "row_counts": dict(normalize.row_counts) if normalize else {},
                "steps": {
                    step.step: round((step.finished_at - step.started_at).total_seconds(), 2)
                    for step in trace.steps
                    if step.finished_at is not None
                },
                "seconds_in_script": round(time.monotonic() - started, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

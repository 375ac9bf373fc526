"""``zoho-dagster check``: configuration, credentials and region, and the scope of every stream, each failure
with its fix."""

import argparse
from datetime import datetime, timezone
from typing import Any

from zoho_dagster.cli.common import zoho_client


def _fix_for(error: Exception) -> str:
    from zoho_dagster.client import ZohoAuthError, ZohoConfigError, ZohoPermissionError

    if isinstance(error, ZohoConfigError):
        return "fix the variable named above"
    if isinstance(error, ZohoPermissionError):
        missing = getattr(error, "missing", None)
        return (
            f"regenerate the Self Client grant with the scope {missing}"
            if missing
            else (
                "regenerate the Self Client grant with ZohoCRM.modules.ALL, ZohoCRM.settings.ALL, "
                "ZohoCRM.users.READ"
            )
        )
    if isinstance(error, ZohoAuthError):
        return (
            "check ZOHO_CRM_CLIENT_ID / ZOHO_CRM_CLIENT_SECRET and ZOHO_CRM_REGION: a client is known "
            "only in "
            "the data centre of its org (US, EU, IN, AU, JP, CN, CA, SA)"
        )
    return "check the network path to Zoho and ZOHO_CRM_API_DOMAIN"


def cmd_check(args: argparse.Namespace) -> int:
    from zoho_dagster.client import ZohoError
    from zoho_dagster.settings import load_settings
    from zoho_dagster.streams import CATALOG

    failures = 0

    def step(label: str, action: Any) -> Any:
        nonlocal failures
        try:
            value = action()
        except (ZohoError, ValueError) as error:
            failures += 1
            print(f"FAIL  {label}: {error}\n      fix: {_fix_for(error)}")
            return None
        print(f"ok    {label}")
        return value

    settings = step("configuration", load_settings)
    if settings is None:
        return 1
    if not settings.has_credentials:
        print(
            "FAIL  credentials: none set\n      fix: set ZOHO_CRM_CLIENT_ID, ZOHO_CRM_CLIENT_SECRET and "
            "ZOHO_CRM_SOID (or ZOHO_CRM_REFRESH_TOKEN), or ZOHO_CRM"
        )
        return 1
    print(f"      region {settings.region}, accounts server {settings.accounts_url}")

    def connect() -> Any:
        client = zoho_client()
        client.list_modules()
        return client

    zoho = step("credentials and region (token + modules metadata)", connect)
    if zoho is None:
        return 1
    now = datetime.now(timezone.utc)
    for spec in CATALOG:
        if spec.module:
            module = spec.module
            step(f"scope for {spec.name} ({module})", lambda module=module: zoho.changed_since(module, now))
        elif spec.name == "users":
            step("scope for users", lambda: next(iter(zoho.iter_users()), None))
    print("all checks passed" if not failures else f"{failures} check(s) failed")
    return 0 if not failures else 1


def add_parser(commands: Any) -> None:
    check = commands.add_parser("check", help="check credentials, region and scopes")
    check.set_defaults(func=cmd_check)

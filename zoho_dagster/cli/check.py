"""``zoho-dagster check``: configuration, the database, credentials and region, and the scope of every stream,
each failure with its fix.

The settings are validated here in full (the definitions load without validating them, so this command and
a run's first step are where a bad region, SOID or anchor date is reported); each failure prints the one
sentence of the error, which names the variable, and a short fix below it.
"""

import argparse
from datetime import datetime, timezone
from typing import Any

from zoho_dagster.cli.common import zoho_client


def _fix_for(error: Exception) -> str:
    from zoho_dagster.client import ZohoAuthError, ZohoConfigError, ZohoPermissionError
    from zoho_dagster.environment import DATABASE_URL_VARIABLE
    from zoho_dagster.postgres.engine import DatabaseConnectionError

    if isinstance(error, ZohoConfigError):
        return "fix the variable named above"
    if isinstance(error, DatabaseConnectionError):
        return f"fix {DATABASE_URL_VARIABLE} (or start that server)"
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
        # the sentence names the variable (region only for a client unknown in the data centre)
        return "change the variable named above"
    return "check the network path to Zoho and ZOHO_CRM_API_DOMAIN"


def _database(database_url: str | None) -> None:
    """Connect once to the database the token cache and the tables use (the embedded one when unset)."""
    from zoho_dagster.postgres.database import check_database, resolve_database_url

    check_database(resolve_database_url(database_url, announce=print))


def cmd_check(args: argparse.Namespace) -> int:
    from zoho_dagster.client import ZohoError
    from zoho_dagster.environment import DATABASE_URL_VARIABLE
    from zoho_dagster.postgres.engine import DatabaseConnectionError
    from zoho_dagster.settings import load_settings
    from zoho_dagster.streams import CATALOG

    failures = 0

    def step(label: str, action: Any) -> Any:
        nonlocal failures
        try:
            value = action()
        except (ZohoError, ValueError, DatabaseConnectionError) as error:
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
    if step(f"database ({DATABASE_URL_VARIABLE})", lambda: _database(settings.database_url) or True) is None:
        return 1

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

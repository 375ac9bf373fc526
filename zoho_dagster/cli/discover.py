"""``zoho-dagster discover``: the org's modules and fields; ``--write`` records the modules for ``'*'``."""

import argparse
import sys
from typing import Any

from zoho_dagster.cli.common import zoho_client


def cmd_discover(args: argparse.Namespace) -> int:
    from zoho_dagster.client import ZohoError
    from zoho_dagster.discovery import modules_from_zoho, write_discovery

    try:
        client = zoho_client()
        modules = client.list_modules()
        usable = [m for m in modules if m.get("api_supported")]
        print(f"{len(usable)} modules served by the API (of {len(modules)}):")
        for module in usable:
            name = module.get("api_name")
            if args.module and name not in args.module:
                continue
            kind = module.get("generated_type", "default")
            print(f"\n{name}  ({module.get('plural_label') or module.get('module_name')}, {kind})")
            if args.no_fields:
                continue
            for field in client.list_fields(str(name)):
                print(f"    {field.get('api_name'):<50} {field.get('data_type', '?')}")
        if args.write:
            path = write_discovery(modules_from_zoho(modules))
            print(f"\nwrote {path}")
    except ZohoError as error:
        print(f"discover failed: {error}", file=sys.stderr)
        return 1
    return 0


def add_parser(commands: Any) -> None:
    discover = commands.add_parser("discover", help="print the org's modules and fields")
    discover.add_argument("--module", nargs="*", help="only these module API names")
    discover.add_argument("--no-fields", action="store_true", help="modules only")
    discover.add_argument(
        "--write", action="store_true", help="write the discovery file: '*' then takes every record module"
    )
    discover.set_defaults(func=cmd_discover)

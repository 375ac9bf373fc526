"""``zoho-dagster demo | dev | discover | check | notifications``: the front door, one module per command.

- ``demo`` (:mod:`~zoho_dagster.cli.demo`): the bundled simulator synced into Postgres and compared with its
  truth.
- ``dev`` (:mod:`~zoho_dagster.cli.dev`): the Dagster UI on this project, against real Zoho or a simulator.
- ``discover`` (:mod:`~zoho_dagster.cli.discover`): the org's modules and fields; ``--write`` records them.
- ``check`` (:mod:`~zoho_dagster.cli.check`): credentials, region and scopes, each failure with its fix.
- ``notifications`` (:mod:`~zoho_dagster.cli.notifications`): Zoho's change notifications: the receiver
  (``serve``) and the channels (``subscribe``, ``unsubscribe``, ``status``).
"""

import argparse
import sys
from collections.abc import Sequence

from zoho_dagster.cli import check, demo, dev, discover, notifications


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoho-dagster", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for command in (demo, dev, discover, check, notifications):
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "dev":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.dagster_args = extra  # `zoho-dagster dev -p 3001`: the rest goes to `dagster dev`
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

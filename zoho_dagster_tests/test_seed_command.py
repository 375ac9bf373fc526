"""The seed's command as a user types it: ``source .venv/bin/activate`` then, from the project root,
``dagster asset materialize --select leads --partition <day>`` with no ``-m``.

That works because ``make install`` appends ``export DAGSTER_MODULE_NAME=zoho_dagster.definitions`` to the
venv's ``activate`` (Dagster's ``-m/--module-name`` reads that variable); without it Dagster stops with
"Invalid set of CLI arguments for loading repository/job". The command runs in a shell against the simulator
and a fresh database, with ``DAGSTER_HOME`` in a temporary directory holding a copy of the project's
``dagster.yaml``; the table must then hold exactly the simulator's live Leads last modified on that day.
"""

import os
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from zoho_dagster.postgres.engine import sqlalchemy_url
from zoho_dagster_tests.postgres.sync_helpers import simulator_variables

SEED_COMMAND = "dagster asset materialize --select leads --partition {partition}"
USAGE_ERROR = "Invalid set of CLI arguments"


def _command(partition: str) -> str:
    activate = Path(sys.executable).parent / "activate"  # the venv this test suite runs in
    return f"source {shlex.quote(str(activate))} && {SEED_COMMAND.format(partition=partition)}"


def test_seed_command_materializes_one_leads_partition(
    simulator: Any, database_url: str, project_root: Path, tmp_path: Path
) -> None:
    day = (datetime.now(timezone.utc) - timedelta(days=1)).date()  # the anchor defaults to a year ago
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(project_root / "dagster.yaml", home / "dagster.yaml")
    org = simulator.primary
    # Nothing from the caller's Zoho or Dagster settings (an activated shell's DAGSTER_MODULE_NAME included):
    # the activate script alone must make the command work.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ZOHO_", "DAGSTER_"))}
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "ZOHO_DAGSTER_DATABASE_URL": database_url,
            **simulator_variables(org),
        }
    )

    completed = subprocess.run(
        ["bash", "-c", _command(day.isoformat())],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    output = completed.stdout + completed.stderr
    hint = " (make install adds DAGSTER_MODULE_NAME to .venv/bin/activate)" if USAGE_ERROR in output else ""
    assert completed.returncode == 0, f"exit {completed.returncode}{hint}:\n{output[-4000:]}"
    assert USAGE_ERROR not in output

    expected = {
        str(record["id"])
        for record in simulator.control.truth("Leads")["data"]
        if record.get("Modified_Time")
        and start <= datetime.fromisoformat(record["Modified_Time"]) < start + timedelta(days=1)
    }
    assert expected, f"the simulator has no Leads modified on {day}: the test would prove nothing"
    engine = sa.create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as connection:
            live = {
                str(row_id)
                for row_id in connection.execute(
                    sa.text("SELECT id FROM zoho_crm.leads WHERE _zoho_deleted_at IS NULL")
                ).scalars()
            }
    finally:
        engine.dispose()
    assert live == expected

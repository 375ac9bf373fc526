"""``zoho-dagster``: the demo ends with "match", check and discover speak to the simulator."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from zoho_dagster.cli import main
from zoho_dagster_tests.postgres.sync_helpers import anchor_days_ago, use_simulator


def test_demo_smoke_ends_with_match(tmp_path: Path, database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOHO_")}
    env["ZOHO_DAGSTER_DATABASE_URL"] = database_url
    env["ZOHO_CRM_ANCHOR_DATE"] = anchor_days_ago(15).isoformat()  # fewer daily partitions: a quicker smoke
    completed = subprocess.run(
        [sys.executable, "-m", "zoho_dagster.cli", "demo", "--records", "300", "--requests-per-second", "50"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    lines = completed.stdout.strip().splitlines()
    assert lines[-1].endswith("match.")
    assert any(line.strip().startswith("leads") and "API calls" in line for line in lines)
    assert sum(line.rstrip().endswith("| match") for line in lines) == 14  # every stream of the catalog
    # progress and results only: no Dagster beta/preview warning blocks around them
    assert "Warning" not in completed.stdout + completed.stderr, completed.stderr[-3000:]


def test_check_passes_against_the_simulator(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_simulator(monkeypatch, simulator, database_url)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "ok    scope for leads (Leads)" in out and "all checks passed" in out


def test_check_names_the_fix_for_each_failure(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_simulator(monkeypatch, simulator, database_url)
    monkeypatch.setenv("ZOHO_CRM_CLIENT_SECRET", "wrong-secret")
    assert main(["check"]) == 1
    assert "fix:" in capsys.readouterr().out
    for variable in ("ZOHO_CRM_CLIENT_ID", "ZOHO_CRM_CLIENT_SECRET", "ZOHO_CRM_SOID"):
        monkeypatch.delenv(variable)
    assert main(["check"]) == 1
    assert "fix: set ZOHO_CRM_CLIENT_ID" in capsys.readouterr().out
    monkeypatch.setenv("ZOHO_CRM_ANCHOR_DATE", "last year")
    assert main(["check"]) == 1
    assert "ZOHO_CRM_ANCHOR_DATE" in capsys.readouterr().out


def test_discover_prints_modules_and_fields(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use_simulator(monkeypatch, simulator, database_url)
    assert main(["discover", "--module", "Leads"]) == 0
    out = capsys.readouterr().out
    assert "\nLeads  (" in out and "\nVehicles  (" not in out
    assert any(line.split() == ["Modified_Time", "datetime"] for line in out.splitlines())

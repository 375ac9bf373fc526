"""``zoho-dagster``: the demo ends with "match", check and discover speak to the simulator."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from zoho_dagster.cli import main
from zoho_dagster_tests.postgres.sync_helpers import anchor_days_ago, use_simulator

CATALOG_STREAMS = (
    *("leads", "contacts", "accounts", "deals", "tasks", "meetings", "calls", "campaigns", "products"),
    *("quotes", "vendors", "notes", "users", "modules"),
)
METADATA_TABLES = ("fields", "org", "roles", "profiles", "currencies")


def _demo(tmp_path: Path, database_url: str, *args: str, days: int = 15) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOHO_")}
    env["ZOHO_DAGSTER_DATABASE_URL"] = database_url
    env["ZOHO_CRM_ANCHOR_DATE"] = anchor_days_ago(days).isoformat()  # fewer daily partitions: a quicker smoke
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "zoho_dagster.cli",
            "demo",
            "--records",
            "300",
            "--requests-per-second",
            "50",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    # progress and results only: no Dagster beta/preview warning blocks around them
    assert "Warning" not in completed.stdout + completed.stderr, completed.stderr[-3000:]
    return completed.stdout.strip().splitlines()


def _verdicts(lines: list[str]) -> dict[str, str]:
    """First word of each result row (a stream, a child table, a metadata table) → its last word."""
    rows = [line.split() for line in lines if line.rstrip().endswith(("| match", "| MISMATCH"))]
    return {row[0]: row[-1] for row in rows}


def test_demo_smoke_ends_with_match(tmp_path: Path, database_url: str) -> None:
    lines = _demo(tmp_path, database_url)
    assert lines[-1].endswith("match.")
    assert any(line.strip().startswith("leads") and "API calls" in line for line in lines)
    verdicts = _verdicts(lines)
    assert {name: verdicts.get(name) for name in CATALOG_STREAMS} == dict.fromkeys(CATALOG_STREAMS, "match")
    assert set(verdicts.values()) == {"match"}


def test_demo_of_the_inventory_modules_fills_parents_children_and_metadata(
    tmp_path: Path, database_url: str
) -> None:
    """The issue's command: parents, line items, stage history and metadata tables, all equal to the truth."""
    # The whole history (the simulator's records span ~400 days): the small inventory modules have rows.
    lines = _demo(
        tmp_path, database_url, "--streams", "quotes", "sales_orders", "invoices", "deals", days=410
    )
    assert lines[-1].endswith("match.")
    verdicts = _verdicts(lines)
    parents = ("quotes", "sales_orders", "invoices", "deals", "modules")
    children = (
        "quotes__quoted_items",
        "sales_orders__ordered_items",
        "invoices__invoiced_items",
        "deals__stage_history",
        "deals__partner_accounts",
        "deals__deal_team",
        "deals__deal_competitors",
    )
    metadata = tuple(f"zoho_crm_demo.{name}" for name in METADATA_TABLES)
    expected = (*parents, *children, *metadata)
    assert {name: verdicts.get(name) for name in expected} == dict.fromkeys(expected, "match")
    rows = [line.split() for line in lines if line.rstrip().endswith("| match")]
    live = {row[0]: int(row[1].replace(",", "")) for row in rows}
    assert all(live[name] > 0 for name in children)  # filled, not two empty tables agreeing


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

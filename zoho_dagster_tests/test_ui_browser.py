"""The Dagster UI in a real browser: materialize one partition of ``leads`` by clicking, see it succeed and
see the stream reported fresh.

``dagster dev`` (webserver and daemon) runs on this project's workspace.yaml against the simulator and a test
database, with ``DAGSTER_HOME`` in a temporary directory. Debian's Chromium, driven by Playwright, opens the
asset graph, then the ``leads`` asset page, picks yesterday's partition in the Materialize dialog and launches
one run; the run is followed through the webserver's GraphQL API until it succeeds, and the run page is saved
as a screenshot in ``.zoho_dagster/artifacts/ui-leads.png``.

Then freshness, which operators watch on the asset page: every stream carries the translator's
``FreshnessPolicy``, and the daemon's ``FreshnessDaemon`` (every 3 s here instead of 30 s) records each
asset's state. Once GraphQL answers ``HEALTHY`` for ``leads``, its page must show the tag "Passing" (in the
Status row and in the "Freshness policy" section, with "Last materialized"), and ``contacts``, never
materialized, ``UNKNOWN`` shown as "Not evaluated" (with "No materializations"): the UI and GraphQL agree, and
the UI tells the two states apart. Screenshots: ``ui-leads-freshness.png`` and ``ui-contacts-freshness.png``.

No browser is ever downloaded: without ``/usr/bin/chromium`` the test fails and says how to install it
(deselect it with ``-m "not browser"``).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from zoho_dagster.postgres.engine import sqlalchemy_url
from zoho_dagster_tests.operations_support import scalar
from zoho_dagster_tests.postgres.sync_helpers import simulator_variables

CHROMIUM = Path(os.environ.get("ZOHO_DAGSTER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROJECT = Path(__file__).resolve().parent.parent
ARTIFACTS = PROJECT / ".zoho_dagster" / "artifacts"
STARTUP_SECONDS = 90
RUN_SECONDS = 90
FRESHNESS_DAEMON_SECONDS = 3
"""How often the daemon's ``FreshnessDaemon`` evaluates the freshness policies here (Dagster's default: 30 s).
It reads ``FRESHNESS_DAEMON_INTERVAL_SECONDS`` once, at import (dagster/_daemon/freshness.py)."""
FRESHNESS_SECONDS = 90
FRESHNESS_UI_TEXT = {
    "HEALTHY": "Passing",
    "WARNING": "Warning",
    "DEGRADED": "Failed",
    "UNKNOWN": "Not evaluated",
    "NOT_APPLICABLE": "None set",
}
"""The tag the asset page shows for each GraphQL ``freshnessStatus`` (``text2`` of ``statusToIconAndColor`` in
Dagster's ui-core AssetHealthSummary.tsx, read from the webapp's source map)."""

RUNS_QUERY = """
query Runs($partition: String!) {
  runsOrError(filter: {tags: [{key: "dagster/partition", value: $partition}]}) {
    ... on Runs { results { runId status } }
  }
}
"""
FRESHNESS_QUERY = """
query Freshness($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) { assetKey { path } freshnessStatusInfo { freshnessStatus } }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sync_playwright() -> Any:
    """Playwright's sync API, or a failure saying what is missing and how to get it (before dagster dev)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: install Debian's package "
            "(apt-get install -y chromium; `make test` does) or deselect this test with -m 'not browser'.",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The playwright package is missing: pip install -e '.[test]'.", pytrace=False)
    return sync_playwright


@pytest.fixture
def dagster_dev(simulator: Any, database_url: str, tmp_path: Path) -> Iterator[str]:
    """``dagster dev -w workspace.yaml`` on a free port; yields the webserver's URL, then stops it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    org = simulator.primary
    anchor = (datetime.now(timezone.utc) - timedelta(days=5)).date().isoformat()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ZOHO_CRM", "ZOHO_DAGSTER_REPLICATION", "ZOHO_DAGSTER_AUTOMATION"))
        and key != "DAGSTER_MODULE_NAME"  # set by the venv's activate script; `-w workspace.yaml` refuses it
    }
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "ZOHO_DAGSTER_DATABASE_URL": database_url,
            "ZOHO_DAGSTER_DAGSTER_STORAGE_URL": sqlalchemy_url(database_url),
            **simulator_variables(org),
            "ZOHO_CRM_ANCHOR_DATE": anchor,
            "FRESHNESS_DAEMON_INTERVAL_SECONDS": str(FRESHNESS_DAEMON_SECONDS),
        }
    )
    port = _free_port()
    log = (tmp_path / "dagster-dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                output = (tmp_path / "dagster-dev.log").read_text()[-3000:]
                pytest.fail(f"dagster dev exited early:\n{output}")
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dagster dev did not answer within {STARTUP_SECONDS} s")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()


def _runs(url: str, partition: str) -> list[dict[str, str]]:
    response = requests.post(
        f"{url}/graphql", json={"query": RUNS_QUERY, "variables": {"partition": partition}}, timeout=10
    )
    response.raise_for_status()
    return list(response.json()["data"]["runsOrError"].get("results") or [])


def _wait_for_run(url: str, partition: str) -> dict[str, str]:
    deadline = time.monotonic() + RUN_SECONDS
    runs: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        runs = _runs(url, partition)
        if runs and runs[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return runs[0]
        time.sleep(1)
    pytest.fail(f"the run for partition {partition} did not finish within {RUN_SECONDS} s: {runs}")


def _freshness(url: str, *assets: str) -> dict[str, str | None]:
    """GraphQL's ``freshnessStatusInfo.freshnessStatus`` of each asset: what the asset page itself reads."""
    keys = [{"path": [asset]} for asset in assets]
    response = requests.post(
        f"{url}/graphql", json={"query": FRESHNESS_QUERY, "variables": {"keys": keys}}, timeout=10
    )
    response.raise_for_status()
    return {
        node["assetKey"]["path"][-1]: (node["freshnessStatusInfo"] or {}).get("freshnessStatus")
        for node in response.json()["data"]["assetNodes"]
    }


def _wait_for_freshness(url: str, asset: str, status: str) -> dict[str, str | None]:
    """Waits until the daemon has recorded ``status``: it evaluates every few seconds, not when a run ends."""
    deadline = time.monotonic() + FRESHNESS_SECONDS
    seen: dict[str, str | None] = {}
    while time.monotonic() < deadline:
        seen = _freshness(url, asset)
        if seen.get(asset) == status:
            return seen
        time.sleep(1)
    pytest.fail(f"{asset}'s freshness did not become {status} within {FRESHNESS_SECONDS} s: {seen}")


def _freshness_on_page(page: Any, url: str, asset: str) -> tuple[list[str], str]:
    """What ``asset``'s page shows under each "Freshness policy" heading, and its "Freshness policy" section.

    The page shows the status twice: as a tag in the Status row and at the top of the sidebar's collapsible
    "Freshness policy" section (ui-core's AssetNodeOverview.tsx, FreshnessPolicySection.tsx), the latter
    with the last materialization and the policy's windows. Both read the same GraphQL query, so once the
    section has loaded, the Status row's tag follows at once.
    """
    page.goto(f"{url}/assets/{asset}")
    trigger = page.get_by_role("button", name="Freshness policy")  # its name also holds the icons' labels
    section = page.locator(f'[id="{trigger.get_attribute("aria-controls")}"]')
    section.get_by_text("Fails if more than").wait_for()  # shown together with the tag, once it has loaded
    section_text = str(section.inner_text())
    tag = section_text.splitlines()[0]
    deadline = time.monotonic() + 30
    while True:
        lines = str(page.locator("body").inner_text()).splitlines()
        shown = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line == "Freshness policy"]
        if shown.count(tag) == 2 or time.monotonic() > deadline:
            return shown, section_text
        time.sleep(0.5)


@pytest.mark.browser
def test_materialize_a_leads_partition_from_the_ui(
    sync_playwright: Any, simulator: Any, dagster_dev: str, database_url: str
) -> None:
    partition = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(30_000)
            # Dagster's "join the community" dialog comes once, at a moment of its choosing: skip it whenever
            # it is in the way of the next action.
            skip = page.get_by_role("button", name="Skip")
            page.add_locator_handler(skip, lambda: skip.click())

            page.goto(f"{dagster_dev}/locations/zoho_dagster/asset-groups/zoho_crm")
            page.get_by_text("leads", exact=True).first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "ui-asset-graph.png"))

            page.goto(f"{dagster_dev}/assets/leads")
            page.get_by_role("button", name="Materialize…").click()

            dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize leads")
            dialog.wait_for()
            partitions = dialog.get_by_role("textbox").first
            partitions.click()
            partitions.fill(partition)
            partitions.press("Enter")
            dialog.get_by_text("1 partition", exact=True).wait_for()
            dialog.get_by_role("button", name="Launch 1 run").click()

            run = _wait_for_run(dagster_dev, partition)
            page.goto(f"{dagster_dev}/runs/{run['runId']}")
            page.get_by_text("Success", exact=True).first.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "ui-leads.png"))

            # The daemon's next evaluation records leads as fresh (materialized seconds ago); contacts was
            # never materialized, so its freshness cannot be evaluated.
            freshness = _wait_for_freshness(dagster_dev, "leads", "HEALTHY")
            freshness.update(_freshness(dagster_dev, "contacts"))
            page.set_viewport_size({"width": 1400, "height": 1100})  # the sidebar's section in the screenshot
            shown: dict[str, tuple[list[str], str]] = {}
            for asset in ("leads", "contacts"):
                shown[asset] = _freshness_on_page(page, dagster_dev, asset)
                page.screenshot(path=str(ARTIFACTS / f"ui-{asset}-freshness.png"))
        finally:
            browser.close()

    assert run["status"] == "SUCCESS"
    day = datetime.fromisoformat(partition).date()
    expected = sum(
        1
        for record in simulator.control.truth("Leads")["data"]
        if datetime.fromisoformat(record["Modified_Time"]).astimezone(timezone.utc).date() == day
    )
    assert expected > 0
    live = scalar(database_url, "SELECT count(*) FROM zoho_crm.leads WHERE _zoho_deleted_at IS NULL")
    assert live == expected
    assert (ARTIFACTS / "ui-leads.png").stat().st_size > 0

    # The UI agrees with GraphQL: each page shows the tag for the status GraphQL answers, in both places.
    assert freshness == {"leads": "HEALTHY", "contacts": "UNKNOWN"}
    for asset, status in freshness.items():
        assert shown[asset][0] == [FRESHNESS_UI_TEXT[str(status)]] * 2, (asset, status, shown[asset])
    assert shown["leads"][0] == ["Passing", "Passing"]
    assert "Last materialized" in shown["leads"][1]
    assert shown["contacts"][0] == ["Not evaluated", "Not evaluated"]
    assert "No materializations" in shown["contacts"][1]
    assert (ARTIFACTS / "ui-leads-freshness.png").stat().st_size > 0

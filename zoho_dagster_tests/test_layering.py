"""The house's layers point one way: read from the source's own imports, not from a list kept by hand.

docs/design.md §2.2 draws the layers; these tests fail when an import crosses them the wrong way, when a
``ZOHO_DAGSTER_*`` variable is read outside :mod:`zoho_dagster.environment`, or when SQL creeps into the
Dagster-only modules.
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "zoho_dagster"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every ``zoho_dagster`` module ``path`` imports, at any depth of the file (lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("zoho_dagster")}


def _graph() -> dict[str, set[str]]:
    return {_module_name(path): _imports(path) for path in PACKAGE.rglob("*.py")}


def _in(package: str, module: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_client_imports_nothing_else_of_the_package() -> None:
    for module, imports in _graph().items():
        if _in("zoho_dagster.client", module):
            outside = {name for name in imports if not _in("zoho_dagster.client", name)}
            assert not outside, f"{module} imports {sorted(outside)}"


def test_the_simulator_stands_alone() -> None:
    for module, imports in _graph().items():
        if _in("zoho_dagster.simulator", module):
            outside = {name for name in imports if not _in("zoho_dagster.simulator", name)}
            assert not outside, f"{module} imports {sorted(outside)}"


def test_settings_use_only_the_clients_public_names() -> None:
    imports = _graph()["zoho_dagster.settings"]
    client_internals = {name for name in imports if name.startswith("zoho_dagster.client.")}
    public = {f"zoho_dagster.client.{name}" for name in __import__("zoho_dagster.client").client.__all__}
    assert client_internals <= public, sorted(client_internals - public)
    assert {name for name in imports if not _in("zoho_dagster.client", name)} <= {
        "zoho_dagster",
        "zoho_dagster.environment",
    }


def test_no_module_below_the_dagster_layer_imports_it() -> None:
    dagster_layer = (
        "zoho_dagster.assets",
        "zoho_dagster.checks",
        "zoho_dagster.automation",
        "zoho_dagster.definitions",
        "zoho_dagster.builder",
        "zoho_dagster.resource",
        "zoho_dagster.cli",
    )
    lower = (
        "zoho_dagster.client",
        "zoho_dagster.settings",
        "zoho_dagster.environment",
        "zoho_dagster.streams",
    )
    for module, imports in _graph().items():
        if any(_in(package, module) for package in lower):
            upward = {name for name in imports if any(_in(package, name) for package in dagster_layer)}
            assert not upward, f"{module} imports {sorted(upward)}"


def test_only_the_environment_module_names_zoho_dagster_variables() -> None:
    readers = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "environment.py" or "simulator" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and text.startswith("ZOHO_DAGSTER_") and text.isupper():
                readers.append(f"{_module_name(path)}: {text}")
    assert not readers, readers


def test_checks_hold_no_sql() -> None:
    import re

    source = (PACKAGE / "checks.py").read_text(encoding="utf-8")
    assert "sa.text(" not in source and "sa.select(" not in source
    assert not re.search(r"\b(SELECT|FROM|WHERE|INSERT|UPDATE)\b ", source)


def test_the_cli_has_one_module_per_command() -> None:
    helpers = {"__init__", "__main__", "common", "comparison"}
    commands = {path.stem for path in (PACKAGE / "cli").glob("*.py")} - helpers
    assert commands == {"demo", "dev", "discover", "check", "notifications"}


def test_importing_the_client_or_the_simulator_loads_neither_dagster_nor_a_database_driver() -> None:
    probe = (
        "import sys, zoho_dagster.client, zoho_dagster.simulator; "
        "print(sorted(m for m in ('dagster', 'sqlalchemy', 'psycopg2') if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert completed.stdout.strip() == "[]"


def test_loading_the_definitions_starts_no_database(tmp_path: Path) -> None:
    """No URL set: the definitions still load, and the embedded server's directory is never created."""
    data_dir = tmp_path / "pgdata"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOHO_", "DAGSTER_"))}
    env["ZOHO_DAGSTER_EMBEDDED_PGDATA"] = str(data_dir)
    probe = "from zoho_dagster.definitions import defs; print(len(list(defs.assets)))"
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip() == "14"
    assert not data_dir.exists()
    assert "Warning" not in completed.stderr, completed.stderr[-3000:]

"""The replication file: the seed page's examples verbatim, custom modules from discovery, clear errors."""

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from zoho_dagster.discovery import modules_from_zoho, read_discovery, snake_case, write_discovery
from zoho_dagster.replication import (
    REPLICATION_VARIABLE,
    ReplicationError,
    load_replication,
    parse_replication,
)
from zoho_dagster_tests.operations_support import resources, scalar, today_key, zoho_resource

# The five replication examples of Sling's zoho-crm connector page
# (https://docs.slingdata.io/connections/api-connections/zoho-crm), copied verbatim.
SEED_POSTGRES = """\
source: ZOHO_CRM
target: MY_POSTGRES

defaults:
  mode: incremental
  object: zoho_crm.{stream_name}

streams:
  # Core CRM objects with incremental sync
  leads:
  contacts:
  accounts:
  deals:

  # Activity data with incremental sync
  tasks:
  meetings:
  calls:

  # Reference data (full-refresh recommended)
  users:
    mode: full-refresh
  modules:
    mode: full-refresh
"""

SEED_ALL = """\
source: ZOHO_CRM
target: MY_POSTGRES

defaults:
  mode: incremental
  object: zoho_crm.{stream_name}

streams:
  # Sync all available endpoints
  '*':

  # Override mode for metadata endpoints
  users:
    mode: full-refresh
  modules:
    mode: full-refresh
"""

SEED_CORE = """\
source: ZOHO_CRM
target: MY_POSTGRES

defaults:
  mode: incremental
  object: crm.{stream_name}

streams:
  leads:
  contacts:
  accounts:
  deals:
  users:
    mode: full-refresh
"""

SEED_ACTIVITIES = """\
source: ZOHO_CRM
target: MY_POSTGRES

defaults:
  mode: incremental
  object: activities.{stream_name}

streams:
  tasks:
  meetings:
  calls:
  notes:
"""

SEED_SALES = """\
source: ZOHO_CRM
target: MY_POSTGRES

defaults:
  mode: incremental
  object: sales.{stream_name}

streams:
  deals:
  quotes:
  products:
  campaigns:
"""

# The seed page's endpoint tables: every stream, and which are incremental.
SEED_INCREMENTAL = [
    "leads", "contacts", "accounts", "deals", "tasks", "meetings", "calls",
    "campaigns", "products", "quotes", "vendors", "notes",
]
SEED_FULL_REFRESH = ["users", "modules"]


def summary(text: str, **kwargs: object) -> dict[str, tuple[str, str]]:
    return {r.spec.name: (r.spec.mode, str(r.target)) for r in parse_replication(text, **kwargs)}


def test_seed_postgres_example() -> None:
    assert summary(SEED_POSTGRES, custom_streams=[]) == {
        **{name: ("incremental", f"zoho_crm.{name}") for name in
           ["leads", "contacts", "accounts", "deals", "tasks", "meetings", "calls"]},
        "users": ("full-refresh", "zoho_crm.users"),
        "modules": ("full-refresh", "zoho_crm.modules"),
    }


def test_seed_core_activity_and_sales_examples() -> None:
    assert summary(SEED_CORE, custom_streams=[]) == {
        "leads": ("incremental", "crm.leads"),
        "contacts": ("incremental", "crm.contacts"),
        "accounts": ("incremental", "crm.accounts"),
        "deals": ("incremental", "crm.deals"),
        "users": ("full-refresh", "crm.users"),
    }
    assert summary(SEED_ACTIVITIES, custom_streams=[]) == {
        name: ("incremental", f"activities.{name}") for name in ["tasks", "meetings", "calls", "notes"]
    }
    assert summary(SEED_SALES, custom_streams=[]) == {
        name: ("incremental", f"sales.{name}") for name in ["deals", "quotes", "products", "campaigns"]
    }


def test_seed_all_example_without_discovery_is_the_catalog(tmp_path: Path) -> None:
    result = summary(SEED_ALL, discovery_file=tmp_path / "absent.yaml")
    expected = {name: ("incremental", f"zoho_crm.{name}") for name in SEED_INCREMENTAL}
    expected.update({name: ("full-refresh", f"zoho_crm.{name}") for name in SEED_FULL_REFRESH})
    assert result == expected


def test_discover_then_star_adds_the_custom_module(
    simulator: object, database_url: str, tmp_path: Path
) -> None:
    client = zoho_resource(simulator, database_url).get_client()
    discovery = tmp_path / "zoho_crm_discovery.yaml"
    write_discovery(modules_from_zoho(client.list_modules()), discovery)
    assert client.stats.calls == 1  # discovery is one call; loading afterwards is none
    modules = read_discovery(discovery)
    # Beyond the default set the simulator serves the custom Vehicles and the standard modules the issue
    # names; its subform and linking modules are children of their parents' streams, never streams.
    # Appointments__s and Services__s are record modules too (docs/zoho-crm-api.md §3.1).
    beyond = {
        "Vehicles",
        "Invoices",
        "Sales_Orders",
        "Purchase_Orders",
        "Price_Books",
        "Cases",
        "Solutions",
        "Appointments__s",
        "Services__s",
    }
    assert modules is not None
    record_modules = {m.api_name for m in modules if m.is_record_stream}
    assert beyond <= record_modules
    assert not {"Quoted_Items", "Deals_X_Accounts", "Home"} & record_modules

    result = summary(SEED_ALL, discovery_file=discovery)
    assert result["vehicles"] == ("incremental", "zoho_crm.vehicles")
    assert result["sales_orders"] == ("incremental", "zoho_crm.sales_orders")
    assert result["price_books"] == ("incremental", "zoho_crm.price_books")
    assert result["appointments_s"] == ("incremental", "zoho_crm.appointments_s")
    assert len(result) == len(SEED_INCREMENTAL) + len(SEED_FULL_REFRESH) + len(beyond)
    replicated = parse_replication(SEED_ALL, discovery_file=discovery)
    (vehicles,) = [r for r in replicated if r.spec.name == "vehicles"]
    assert vehicles.spec.module == "Vehicles"
    assert client.stats.calls == 1


def test_snake_case_of_module_api_names() -> None:
    assert snake_case("Vehicles") == "vehicles"
    assert snake_case("Sales_Orders") == "sales_orders"
    assert snake_case("Appointments__s") == "appointments_s"
    assert snake_case("CustomModule3") == "custom_module3"
    assert snake_case("Job_Openings") == "job_openings"


def test_overrides_disabled_and_globs() -> None:
    text = """
streams:
  '*':
  notes: {disabled: true}
  leads: {object: crm.prospects}
  'c*': {object: 'contacts_and_co.{stream_name}'}
"""
    result = summary(text, custom_streams=[])
    assert "notes" not in result
    assert result["leads"] == ("incremental", "crm.prospects")
    assert result["calls"] == ("incremental", "contacts_and_co.calls")
    assert result["campaigns"] == ("incremental", "contacts_and_co.campaigns")
    assert result["contacts"] == ("incremental", "contacts_and_co.contacts")
    assert result["users"] == ("full-refresh", "zoho_crm.users")


def test_default_without_file_is_whole_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPLICATION_VARIABLE, raising=False)
    result = {r.spec.name: str(r.target) for r in load_replication()}
    assert result == {name: f"zoho_crm.{name}" for name in SEED_INCREMENTAL + SEED_FULL_REFRESH}


def test_file_named_by_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "replication.yaml"
    path.write_text(SEED_SALES)
    monkeypatch.setenv(REPLICATION_VARIABLE, str(path))
    assert [str(r.target) for r in load_replication()] == [
        "sales.deals", "sales.campaigns", "sales.products", "sales.quotes"
    ]
    monkeypatch.setenv(REPLICATION_VARIABLE, str(tmp_path / "missing.yaml"))
    with pytest.raises(ReplicationError, match=f"missing.yaml does not exist; fix {REPLICATION_VARIABLE}"):
        load_replication()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("streams: {lead: }", r"streams\.lead .* not a Zoho CRM stream; did you mean 'leads'\?"),
        ("streams: {leads: {mode: snapshot}}", r"streams\.leads\.mode .* is 'snapshot'; use 'incremental'"),
        ("defaults: {mode: append}\nstreams: {leads: }", r"defaults\.mode .* is 'append'; use 'incremental'"),
        ("defaults: {object: crm}\nstreams: {leads: }", r"defaults\.object .* every stream in one table"),
        ("defaults: {object: 'crm.{stream}'}\nstreams: {leads: }", r"uses \{stream\}; the only placeholder"),
        ("streams: {leads: {object: 'a.b.c'}}", r"streams\.leads\.object .* must be schema\.table"),
        ("streams: {leads: {object: 'Crm.Leads'}}", r"lower-case letters, digits and underscores"),
        ("streams: {users: {mode: incremental}}", r"streams\.users\.mode .* cannot be 'incremental'"),
        ("streams: {leads: {mode: full-refresh}}", r"streams\.leads\.mode .* cannot be 'full-refresh'"),
        ("streams: {leads: {object: x.t}, deals: {object: x.t}}", r"'leads' and 'deals' .* write to x\.t"),
        ("streams: {'zz*': }", r"streams\.'zz\*' .* matches no stream"),
        ("streams: {leads: {primary_key: id}}", r"'streams\.leads\.primary_key' .* not supported; remove"),
        ("hooks: {}\nstreams: {leads: }", r"'hooks' .* is not supported; remove it"),
        ("streams: []", r"'streams' .* must map stream names"),
        ("streams: {leads: {disabled: true}}", r"selects no stream"),
    ],
)
def test_invalid_files_get_one_sentence(text: str, message: str) -> None:
    with pytest.raises(ReplicationError, match=message) as raised:
        parse_replication(text, custom_streams=[])
    assert "\n" not in str(raised.value)


def test_seed_core_example_materializes_into_crm_schema(simulator: object, database_url: str) -> None:
    """``object: crm.{stream_name}`` puts leads in crm.leads (nothing in zoho_crm), today's partition."""
    from zoho_dagster.assets import build_stream_assets

    # A lead modified now, so today's partition holds at least one even just after midnight UTC.
    simulator.control.create("Leads", {"Last_Name": "Today"})  # type: ignore[attr-defined]
    replicated = parse_replication(SEED_CORE, custom_streams=[])
    leads = [r for r in replicated if r.spec.name == "leads"]
    assets = build_stream_assets([r.spec for r in leads], {r.spec.name: str(r.target) for r in leads})
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            assets, partition_key=today_key(), instance=instance, resources=resources(simulator, database_url)
        )
    assert result.success
    today = datetime.now(timezone.utc).date()
    expected = sum(
        1
        for record in simulator.control.truth("Leads")["data"]  # type: ignore[attr-defined]
        if datetime.fromisoformat(record["Modified_Time"]).astimezone(timezone.utc).date() == today
    )
    assert expected > 0
    assert scalar(database_url, "SELECT count(*) FROM crm.leads WHERE _zoho_deleted_at IS NULL") == expected
    assert scalar(database_url, "SELECT to_regclass('zoho_crm.leads') IS NULL") is True


def test_custom_module_from_star_materializes(simulator: object, database_url: str, tmp_path: Path) -> None:
    """The discovered custom module syncs like any stream: all Vehicles records reach zoho_crm.vehicles."""
    from zoho_dagster_tests.operations_support import earliest_modified, materialize_range

    discovery = tmp_path / "zoho_crm_discovery.yaml"
    client = zoho_resource(simulator, database_url).get_client()
    write_discovery(modules_from_zoho(client.list_modules()), discovery)
    vehicles = [r for r in parse_replication(SEED_ALL, discovery_file=discovery) if r.spec.name == "vehicles"]
    with dg.instance_for_test() as instance:
        result = materialize_range(
            vehicles, simulator, database_url, earliest_modified(simulator, "Vehicles"), instance
        )
    assert result.success
    truth = simulator.control.truth("Vehicles")["data"]  # type: ignore[attr-defined]
    live = scalar(database_url, "SELECT count(*) FROM zoho_crm.vehicles WHERE _zoho_deleted_at IS NULL")
    assert live == len(truth)


def test_discover_write_then_load_replication_from_the_environment(
    simulator: object, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``discover --write`` then ``'*'`` in ``$ZOHO_DAGSTER_REPLICATION``: the custom module is in."""
    from zoho_dagster.cli import main
    from zoho_dagster.environment import DISCOVERY_VARIABLE
    from zoho_dagster_tests.postgres.sync_helpers import use_simulator

    use_simulator(monkeypatch, simulator, database_url)
    discovery = tmp_path / "discovered.yaml"
    monkeypatch.setenv(DISCOVERY_VARIABLE, str(discovery))
    assert main(["discover", "--no-fields", "--write"]) == 0
    assert discovery.exists()
    replication = tmp_path / "replication.yaml"
    replication.write_text(SEED_ALL)
    monkeypatch.setenv(REPLICATION_VARIABLE, str(replication))
    targets = {r.spec.name: str(r.target) for r in load_replication()}
    assert targets["vehicles"] == "zoho_crm.vehicles"
    assert targets["leads"] == "zoho_crm.leads"


def test_standard_modules_can_be_named_without_discovery(tmp_path: Path) -> None:
    """``invoices`` and the other standard modules are streams by name even before any discovery."""
    text = """
streams:
  invoices:
  sales_orders: {object: crm.orders}
  leads:
"""
    result = summary(text, discovery_file=tmp_path / "absent.yaml")
    assert result == {
        "leads": ("incremental", "zoho_crm.leads"),
        "invoices": ("incremental", "zoho_crm.invoices"),
        "sales_orders": ("incremental", "crm.orders"),
    }
    (orders,) = [r for r in parse_replication(text, custom_streams=[]) if r.spec.name == "sales_orders"]
    assert orders.spec.module == "Sales_Orders"
    # '*' without discovery stays the default set: an org may lack the inventory modules.
    assert "invoices" not in summary("streams: {'*': }", discovery_file=tmp_path / "absent.yaml")

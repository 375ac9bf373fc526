"""ZohoCRMResource: EnvVar secrets, Definitions that load without them, clients that reach the simulator."""

from typing import Any

import dagster as dg
import pytest

from zoho_dagster.client import ZohoClient, ZohoConfigError
from zoho_dagster.resource import ZohoCRMResource
from zoho_dagster_tests.client.helpers import shown_by_default
from zoho_dagster_tests.postgres.sync_helpers import simulator_variables


def _environ(org: dict[str, Any], database_url: str) -> dict[str, str]:
    return {**simulator_variables(org), "ZOHO_DAGSTER_DATABASE_URL": database_url}


def test_from_env_uses_envvar_for_each_set_variable() -> None:
    resource = ZohoCRMResource.from_env(
        {"ZOHO_CRM_CLIENT_ID": "1000.A", "ZOHO_CRM_CLIENT_SECRET": "s3cr3t-value"}
    )
    assert resource.client_id == dg.EnvVar("ZOHO_CRM_CLIENT_ID")
    assert resource.client_secret == dg.EnvVar("ZOHO_CRM_CLIENT_SECRET")
    assert resource.soid is None and resource.refresh_token is None


def test_definitions_load_without_any_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ZOHO_CRM",
        "ZOHO_CRM_CLIENT_ID",
        "ZOHO_CRM_CLIENT_SECRET",
        "ZOHO_CRM_SOID",
        "ZOHO_CRM_REFRESH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)

    @dg.asset
    def probe(zoho_crm: ZohoCRMResource) -> None:
        zoho_crm.get_client()

    defs = dg.Definitions(assets=[probe], resources={"zoho_crm": ZohoCRMResource.from_env()})
    assert defs.resolve_asset_graph().get_all_asset_keys() == {dg.AssetKey("probe")}
    result = dg.materialize([probe], resources={"zoho_crm": ZohoCRMResource.from_env()}, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    messages = []
    while failure is not None:
        messages.append(failure.message)
        failure = failure.cause
    assert any("ZOHO_CRM_CLIENT_ID is not set" in message for message in messages)


def test_resource_reaches_the_simulator_from_the_environment(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = _environ(simulator.primary, database_url)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    seen: dict[str, Any] = {}

    @dg.asset
    def probe(zoho_crm: ZohoCRMResource) -> None:
        client = zoho_crm.get_client()
        seen["modules"] = client.list_modules()
        seen["stats"] = client.stats
        seen["repr"] = repr(zoho_crm) + repr(client)

    resource = ZohoCRMResource.from_env(requests_per_second=50.0)
    assert dg.materialize([probe], resources={"zoho_crm": resource}).success
    assert seen["modules"] and seen["stats"].calls == 1
    assert simulator.primary["client_secret"] not in seen["repr"]


def test_sling_connection_variable_configures_the_resource(simulator: Any, database_url: str) -> None:
    import json

    org = simulator.primary
    connection = json.dumps(
        {
            "type": "api",
            "spec": "zoho-crm",
            "secrets": {
                key: org[key] for key in ("client_id", "client_secret", "soid", "accounts_url", "api_domain")
            },
        }
    )
    client = ZohoCRMResource(connection=connection, database_url=database_url).get_client()
    assert isinstance(client, ZohoClient)
    assert client.count("Leads") == len(shown_by_default(simulator.control.truth("Leads")))  # strict (§10)


def test_repr_masks_secrets() -> None:
    resource = ZohoCRMResource(
        client_id="1000.A", client_secret="s3cr3t-value", refresh_token="1000.rt.value"
    )
    assert "s3cr3t-value" not in repr(resource) and "1000.rt.value" not in repr(resource)
    assert "s3cr3t-value" not in str(resource)


def test_bad_region_fails_with_one_sentence() -> None:
    with pytest.raises(ZohoConfigError, match="ZOHO_CRM_REGION"):
        ZohoCRMResource(
            client_id="1000.A", client_secret="s3cr3t-value", soid="ZohoCRM.1", region="XX"
        ).get_client()


def test_run_config_tuning_keeps_the_credentials_from_the_environment(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``resources.zoho_crm.config: {max_concurrency: 7}`` in run config, credentials from ``ZOHO_CRM_*``."""
    for name, value in _environ(simulator.primary, database_url).items():
        monkeypatch.setenv(name, value)
    seen: dict[str, Any] = {}

    @dg.asset
    def probe(zoho_crm: ZohoCRMResource) -> None:
        client = zoho_crm.get_client()
        seen["modules"] = client.list_modules()
        seen["concurrency"] = client.concurrency()

    result = dg.materialize(
        [probe],
        resources={"zoho_crm": ZohoCRMResource.from_env()},
        run_config={"resources": {"zoho_crm": {"config": {"max_concurrency": 7}}}},
    )
    assert result.success
    assert seen["modules"] and seen["concurrency"] == 7


def test_tuning_variables_are_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoho_dagster.settings import load_settings

    settings = load_settings({"ZOHO_CRM_MAX_CONCURRENCY": "12", "ZOHO_CRM_REQUESTS_PER_SECOND": "2.5"})
    assert (settings.max_concurrency, settings.requests_per_second) == (12, 2.5)
    assert load_settings({}).requests_per_second is None  # no rate cap unless asked for
    with pytest.raises(ZohoConfigError, match="ZOHO_CRM_MAX_CONCURRENCY is '40'; set it to a whole number"):
        load_settings({"ZOHO_CRM_MAX_CONCURRENCY": "40"})
    with pytest.raises(ZohoConfigError, match="ZOHO_CRM_BULK_THRESHOLD is 'lots'"):
        load_settings({"ZOHO_CRM_BULK_THRESHOLD": "lots"})


def test_the_pool_limit_sizes_each_process_share(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three runs may call Zoho at once (the pool limit): each takes a third of the edition's concurrency."""
    # this process may have learnt the simulated org's edition in an earlier test: forget it
    monkeypatch.setattr("zoho_dagster.client.client._EDITION_CONCURRENCY_SEEN", {})
    simulator.control.set_limits(edition="Ultimate")
    org = simulator.primary
    seen: dict[str, Any] = {}

    @dg.asset
    def probe(zoho_crm: ZohoCRMResource) -> None:
        client = zoho_crm.get_client()
        seen["concurrency"] = client.concurrency()
        seen["heavy"] = client.limiter.heavy_limit

    resource = ZohoCRMResource(
        client_id=org["client_id"],
        client_secret=org["client_secret"],
        soid=org["soid"],
        accounts_url=org["accounts_url"],
        api_domain=org["api_domain"],
        database_url=database_url,
    )
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 3}}}) as instance:
        assert dg.materialize([probe], resources={"zoho_crm": resource}, instance=instance).success
    assert seen == {"concurrency": 25 // 3, "heavy": 10 // 3}

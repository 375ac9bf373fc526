"""Every failure is one sentence that names its cause and its fix (a variable, a key or a command).

Each test drives one mistake a user really makes (a wrong database port, an unreachable host, an accounts
URL with a path, plain http, a SOID of another org, a reversed partition range, a misspelt stream, a bad
setting at load) and reads what the user would read: the exception text, the Dagster step failure, or the
command's output (docs/design.md §1, "Errors the user sees").
"""

import re
import socket
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from zoho_dagster.client import ZohoAuthError, ZohoConfigError, ZohoTransientError
from zoho_dagster.client.policy import RetryPolicy
from zoho_dagster.postgres.engine import make_engine, sqlalchemy_url
from zoho_dagster.settings import load_settings
from zoho_dagster.streams import CATALOG, stream
from zoho_dagster_tests.client.conftest import org_client
from zoho_dagster_tests.postgres.sync_helpers import assets_by_name, materialize, today, use_simulator

QUICK = RetryPolicy(max_retries=1, backoff_base=0.01, backoff_max=0.02, connect_timeout=2.0, read_timeout=5.0)
TODAY = date(2026, 3, 15)


def one_sentence(text: str) -> str:
    """``text`` when it is one sentence on one line (a statement, ``;``, its fix); else the test fails."""
    assert "\n" not in text.strip(), text
    plain = re.sub(r"\be\.g\.", "eg", text.strip())
    assert plain.endswith((".", "?", ")")), text
    assert not re.search(r"[.?!]\s+[A-Z]", plain), f"more than one sentence: {text}"
    return text


def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def step_failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """The failed step's error and its causes, top first, as Dagster records them."""
    failures = result.get_step_failure_events()
    assert failures, "the run did not fail"
    error = failures[0].step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message.strip())
        error = error.cause
    return messages


def top_sentence(result: dg.ExecuteInProcessResult) -> str:
    """What the UI shows first for a failed step: the first line of the top error, less its class name."""
    first = step_failure_messages(result)[0].splitlines()[0]
    return first.split(": ", 1)[1] if re.match(r"^[\w.]+: ", first) else first


# --- the database -----------------------------------------------------------------------------------------


@pytest.fixture
def bad_database_urls(database_url: str) -> Iterator[dict[str, str]]:
    """A URL with a port nothing listens on and one naming a database that does not exist."""
    url = sa.make_url(sqlalchemy_url(database_url))
    yield {
        "port": url.set(port=closed_port(), password="pw-not-shown-4711").render_as_string(
            hide_password=False
        ),
        "name": url.set(database="zd_no_such_database").render_as_string(hide_password=False),
    }


@pytest.mark.parametrize("mistake", ["port", "name"])
def test_a_wrong_database_port_or_name_names_the_variable(
    bad_database_urls: dict[str, str], mistake: str
) -> None:
    url = bad_database_urls[mistake]
    with pytest.raises(Exception) as caught, make_engine(url).connect() as connection:
        connection.execute(sa.text("SELECT 1"))
    text = one_sentence(str(caught.value))
    assert "ZOHO_DAGSTER_DATABASE_URL" in text
    assert "pw-not-shown-4711" not in text
    named = "zd_no_such_database" if mistake == "name" else f":{sa.make_url(url).port}/"
    assert named in text


def test_a_run_on_a_wrong_database_fails_once_naming_the_variable(
    simulator: Any, database_url: str, bad_database_urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_simulator(monkeypatch, simulator, database_url)
    monkeypatch.setenv("ZOHO_DAGSTER_DATABASE_URL", bad_database_urls["name"])
    users = assets_by_name(today(), [stream("users")])["users"]
    result = materialize([users], raise_on_error=False)
    assert not result.success
    sentence = one_sentence(top_sentence(result))
    assert "ZOHO_DAGSTER_DATABASE_URL" in sentence and "zd_no_such_database" in sentence
    failure = result.get_step_failure_events()[0].step_failure_data
    assert failure.user_failure_data is not None  # a dg.Failure: no retry can fix a wrong URL


# --- hosts ------------------------------------------------------------------------------------------------


def test_an_unreachable_api_host_names_the_api_domain(simulator: Any, database_url: str) -> None:
    org = {**simulator.primary, "api_domain": f"http://127.0.0.1:{closed_port()}"}
    with pytest.raises(ZohoTransientError) as caught:
        org_client(org, database_url, policy=QUICK).list_modules()
    text = one_sentence(str(caught.value))
    assert "ZOHO_CRM_API_DOMAIN" in text and "ZOHO_CRM_REGION" in text


def test_an_unreachable_accounts_server_names_the_accounts_url(simulator: Any, database_url: str) -> None:
    accounts = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(ZohoAuthError) as caught:
        org_client(simulator.primary, database_url, policy=QUICK, accounts_url=accounts).list_modules()
    text = one_sentence(str(caught.value))
    assert "ZOHO_CRM_ACCOUNTS_URL" in text and "ZOHO_CRM_REGION" in text and "reach" in text


@pytest.mark.parametrize(
    "value",
    [
        "https://accounts.zoho.eu/oauth/v2/token",
        "https://accounts.zoho.eu/oauth",
        "https://accounts.zoho.eu/x/",
    ],
)
def test_an_accounts_url_with_a_path_is_refused_at_validation(value: str) -> None:
    with pytest.raises(ZohoConfigError) as caught:
        load_settings({"ZOHO_CRM_ACCOUNTS_URL": value}, today=TODAY)
    text = one_sentence(str(caught.value))
    assert "ZOHO_CRM_ACCOUNTS_URL" in text and "https://accounts.zoho.eu" in text and "path" in text


def test_an_api_domain_with_a_path_is_refused_at_validation() -> None:
    with pytest.raises(ZohoConfigError) as caught:
        load_settings({"ZOHO_CRM_API_DOMAIN": "https://www.zohoapis.eu/crm/v6"}, today=TODAY)
    assert "ZOHO_CRM_API_DOMAIN" in one_sentence(str(caught.value))


def test_a_404_from_the_accounts_server_blames_the_url_not_the_credentials(
    simulator: Any, database_url: str
) -> None:
    """A path on a loopback host passes validation (the simulator's hosts have one); the 404 is explained."""
    accounts = simulator.primary["accounts_url"] + "/oauth/v2/token"
    with pytest.raises(ZohoAuthError) as caught:
        org_client(simulator.primary, database_url, policy=QUICK, accounts_url=accounts).list_modules()
    text = one_sentence(str(caught.value))
    assert "ZOHO_CRM_ACCOUNTS_URL" in text and "404" in text
    assert "credentials" not in text and "ZOHO_CRM_CLIENT_SECRET" not in text


@pytest.mark.parametrize(
    ("variable", "value"),
    [("ZOHO_CRM_ACCOUNTS_URL", "http://accounts.zoho.eu"), ("ZOHO_CRM_API_DOMAIN", "http://www.zohoapis.eu")],
)
def test_plain_http_is_refused_for_a_remote_host(variable: str, value: str) -> None:
    with pytest.raises(ZohoConfigError) as caught:
        load_settings({variable: value}, today=TODAY)
    text = one_sentence(str(caught.value))
    assert variable in text and value.replace("http://", "https://") in text


@pytest.mark.parametrize(
    "host", ["http://127.0.0.1:8765/us/accounts", "http://localhost:8765", "http://[::1]:8765/eu/accounts"]
)
def test_plain_http_and_paths_stay_allowed_on_loopback(host: str) -> None:
    settings = load_settings({"ZOHO_CRM_ACCOUNTS_URL": host, "ZOHO_CRM_API_DOMAIN": host}, today=TODAY)
    assert settings.accounts_url == host and settings.api_domain == host


def test_the_simulators_hosts_pass_validation(simulator: Any) -> None:
    for org in simulator.connection["orgs"]:
        settings = load_settings(
            {"ZOHO_CRM_ACCOUNTS_URL": org["accounts_url"], "ZOHO_CRM_API_DOMAIN": org["api_domain"]},
            today=TODAY,
        )
        assert settings.accounts_url == org["accounts_url"]


# --- the org ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["another org", "no org"])
def test_a_wrong_soid_names_the_soid_and_where_to_find_the_org_id(
    simulator: Any, database_url: str, which: str
) -> None:
    orgs = {org["region"]: org for org in simulator.connection["orgs"]}
    soid = orgs["EU"]["soid"] if which == "another org" else "ZohoCRM.999999999"
    with pytest.raises(ZohoAuthError) as caught:
        org_client(orgs["US"], database_url, soid=soid).list_modules()
    text = one_sentence(str(caught.value))
    assert "ZOHO_CRM_SOID" in text and soid in text and "Company Details" in text
    assert "ZOHO_CRM_REGION" not in text


# --- partitions and streams -------------------------------------------------------------------------------


def test_a_reversed_partition_range_is_refused_with_the_right_order(
    simulator: Any, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_simulator(monkeypatch, simulator, database_url)
    first, last = today() - timedelta(days=6), today() - timedelta(days=2)
    leads = assets_by_name(today() - timedelta(days=10), [stream("leads")])["leads"]
    result = materialize([leads], last, first, raise_on_error=False)  # B...A with B > A
    assert not result.success
    sentence = one_sentence(top_sentence(result))
    assert f"{last}...{first}" in sentence and f"{first}...{last}" in sentence
    assert simulator.control.stats()["token_grants"] == 0  # refused before any call to Zoho


def test_the_demo_refuses_unknown_stream_names_with_the_closest_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zoho_dagster.cli import demo, main

    def must_not_run(*_: object, **__: object) -> None:
        raise AssertionError("the demo started although a stream name is unknown")

    monkeypatch.setattr(demo, "shared_database_url", must_not_run)
    monkeypatch.setattr(demo, "simulator", must_not_run)
    assert main(["demo", "--streams", "quotes", "quotez", "bogus"]) != 0
    captured = capsys.readouterr()
    text = one_sentence((captured.err + captured.out).strip())
    assert "'quotez'" in text and "did you mean 'quotes'?" in text and "'bogus'" in text
    assert "--streams" in text


def test_an_unknown_stream_name_in_code_suggests_the_closest_one() -> None:
    with pytest.raises(KeyError) as caught:
        stream("contact")
    text = one_sentence(str(caught.value))
    assert "did you mean 'contacts'?" in text and not text.startswith("'")


# --- configuration surfaces at the first step, never while the definitions load ---------------------------


BAD_SETTINGS = [
    ("ZOHO_CRM_REGION", "XX"),
    ("ZOHO_CRM_SOID", "123"),
    ("ZOHO_CRM_ANCHOR_DATE", "2024-13-01"),
    ("ZOHO_CRM_ANCHOR_DATE", "2999-01-01"),
    ("ZOHO_CRM_ACCOUNTS_URL", "accounts.zoho.eu"),
    ("ZOHO_DAGSTER_DATABASE_URL", "mysql://u@h/db"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_SETTINGS)
def test_bad_settings_let_the_definitions_load_and_fail_the_first_step(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoho_dagster.builder import build_definitions

    for name in (
        "ZOHO_CRM",
        "ZOHO_CRM_CLIENT_ID",
        "ZOHO_CRM_SOID",
        "ZOHO_CRM_REGION",
        "ZOHO_CRM_ANCHOR_DATE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZOHO_CRM_CLIENT_ID", "1000.LOAD")
    monkeypatch.setenv("ZOHO_CRM_CLIENT_SECRET", "load-test-secret-value")
    monkeypatch.setenv("ZOHO_CRM_SOID", "ZohoCRM.42")
    monkeypatch.setenv(variable, value)
    defs = build_definitions()  # must not raise: the UI shows the assets whatever the settings
    assets = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert assets == {spec.name for spec in CATALOG}
    leads = defs.resolve_assets_def("leads")
    assert leads.partitions_def is not None
    if variable == "ZOHO_CRM_ANCHOR_DATE":  # the default anchor, a year ago, until the variable is fixed
        first = leads.partitions_def.get_first_partition_key()
        assert date.fromisoformat(first) >= today() - timedelta(days=366)
    users = defs.resolve_assets_def("users")
    result = dg.materialize([users], raise_on_error=False)  # with the definitions' own resources
    assert not result.success
    sentence = one_sentence(top_sentence(result))
    assert variable in sentence


@pytest.mark.parametrize(("variable", "value"), BAD_SETTINGS[:3])
def test_check_names_each_bad_setting(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zoho_dagster.cli import main

    monkeypatch.setenv(variable, value)
    assert main(["check"]) == 1
    assert variable in capsys.readouterr().out

"""Environment → settings: docs/design.md §1's variables, the Sling-style ZOHO_CRM, one clear sentence per
mistake."""

import json
from datetime import date

import pytest

from zoho_dagster.client import ZohoConfigError
from zoho_dagster.settings import load_settings

TODAY = date(2026, 3, 15)
SECRET = "0123456789abcdef-secret"


def test_defaults_without_any_variable() -> None:
    settings = load_settings({}, today=TODAY)
    assert settings.region == "US"
    assert settings.accounts_url == "https://accounts.zoho.com"  # docs/zoho-crm-api.md §1.9
    assert settings.api_domain is None
    assert settings.anchor_date == date(2025, 3, 15)  # one year before today (Sling's default)
    assert settings.database_url is None
    assert not settings.has_credentials
    assert settings.whole_rich_text  # rich text whole unless turned off (docs/zoho-crm-api.md §4.1)
    assert not load_settings({"ZOHO_CRM_WHOLE_RICH_TEXT": "false"}, today=TODAY).whole_rich_text


def test_single_variables() -> None:
    settings = load_settings(
        {
            "ZOHO_CRM_CLIENT_ID": "1000.ABC",
            "ZOHO_CRM_CLIENT_SECRET": SECRET,
            "ZOHO_CRM_SOID": "ZohoCRM.42",
            "ZOHO_CRM_REGION": "eu",
            "ZOHO_CRM_ANCHOR_DATE": "2024-02-29",
            "ZOHO_DAGSTER_DATABASE_URL": "postgresql://u:p@h/db",
        },
        today=TODAY,
    )
    assert (settings.region, settings.accounts_url) == ("EU", "https://accounts.zoho.eu")
    assert settings.anchor_date == date(2024, 2, 29)
    credentials = settings.credentials()
    assert credentials.grant == "client_credentials" and credentials.soid == "ZohoCRM.42"
    assert SECRET not in repr(settings) and SECRET not in repr(credentials)
    assert "u:p@h" not in repr(settings)


@pytest.mark.parametrize("form", ["yaml", "json"])
def test_sling_connection(form: str) -> None:
    connection = {
        "type": "api",
        "spec": "zoho-crm",
        "secrets": {
            "client_id": "1000.ABC",
            "client_secret": SECRET,
            "soid": "ZohoCRM.12345678",
            "accounts_url": "https://accounts.zoho.in",
            "api_domain": "https://www.zohoapis.in",
        },
        "inputs": {"anchor_date": "2020-01-01"},
    }
    text = (
        json.dumps(connection)
        if form == "json"
        else (
            '{ type: api, spec: zoho-crm, secrets: { client_id: "1000.ABC", client_secret: "' + SECRET + '", '
            'soid: "ZohoCRM.12345678", accounts_url: "https://accounts.zoho.in", '
            'api_domain: "https://www.zohoapis.in" }, inputs: { anchor_date: "2020-01-01" } }'
        )
    )
    settings = load_settings({"ZOHO_CRM": text}, today=TODAY)
    assert settings.client_id == "1000.ABC" and settings.client_secret == SECRET
    assert (
        settings.accounts_url == "https://accounts.zoho.in"
        and settings.api_domain == "https://www.zohoapis.in"
    )
    assert settings.region == "IN"  # named by its accounts server, so messages cite the right region
    assert settings.anchor_date == date(2020, 1, 1)


def test_single_variable_wins_over_the_connection() -> None:
    connection = json.dumps({"secrets": {"client_id": "from-connection", "client_secret": SECRET}})
    settings = load_settings({"ZOHO_CRM": connection, "ZOHO_CRM_CLIENT_ID": "from-variable"}, today=TODAY)
    assert settings.client_id == "from-variable" and settings.client_secret == SECRET


def test_refresh_token_grant_when_no_soid() -> None:
    settings = load_settings(
        {
            "ZOHO_CRM_CLIENT_ID": "1000.A",
            "ZOHO_CRM_CLIENT_SECRET": SECRET,
            "ZOHO_CRM_REFRESH_TOKEN": "1000.r.t",
        },
        today=TODAY,
    )
    assert settings.credentials().grant == "refresh_token"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"ZOHO_CRM_REGION": "UK"}, "ZOHO_CRM_REGION"),
        ({"ZOHO_CRM_ANCHOR_DATE": "01/02/2024"}, "ZOHO_CRM_ANCHOR_DATE"),
        ({"ZOHO_CRM_WHOLE_RICH_TEXT": "cut"}, "ZOHO_CRM_WHOLE_RICH_TEXT"),
        ({"ZOHO_CRM_ANCHOR_DATE": "2999-01-01"}, "ZOHO_CRM_ANCHOR_DATE"),
        ({"ZOHO_CRM_SOID": "12345678"}, "ZohoCRM.12345678"),
        ({"ZOHO_CRM_ACCOUNTS_URL": "accounts.zoho.eu"}, "ZOHO_CRM_ACCOUNTS_URL"),
        ({"ZOHO_CRM_API_DOMAIN": "ftp://x"}, "ZOHO_CRM_API_DOMAIN"),
        ({"ZOHO_DAGSTER_DATABASE_URL": "mysql://u@h/db"}, "ZOHO_DAGSTER_DATABASE_URL"),
        ({"ZOHO_CRM": "{secrets: [" + SECRET}, "ZOHO_CRM"),
        ({"ZOHO_CRM": "- a list"}, "ZOHO_CRM"),
        ({"ZOHO_CRM": '{"type": "api", "spec": "stripe"}'}, "spec: zoho-crm"),
        ({"ZOHO_CRM": '{"secrets": {"client_sercet": "x"}}'}, "client_sercet"),
        ({"ZOHO_CRM": '{"inputs": {"anchor_date": "yesterday"}}'}, "inputs.anchor_date"),
    ],
)
def test_bad_configuration_is_one_sentence_naming_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ZohoConfigError) as caught:
        load_settings(environ, today=TODAY)
    text = str(caught.value)
    assert named in text
    assert text.count(". ") == 0 or text.count(";") >= 1  # one sentence: a statement and its fix
    assert SECRET not in text


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({}, "ZOHO_CRM_CLIENT_ID"),
        ({"ZOHO_CRM_CLIENT_ID": "1000.A"}, "ZOHO_CRM_CLIENT_SECRET"),
        ({"ZOHO_CRM_CLIENT_ID": "1000.A", "ZOHO_CRM_CLIENT_SECRET": SECRET}, "ZOHO_CRM_SOID"),
    ],
)
def test_missing_credentials_fail_only_when_needed(environ: dict[str, str], named: str) -> None:
    settings = load_settings(environ, today=TODAY)  # loading is fine: Definitions must load without secrets
    with pytest.raises(ZohoConfigError, match=named):
        settings.credentials()

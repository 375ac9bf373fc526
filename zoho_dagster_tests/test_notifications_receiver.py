"""The receiver on a real port over a real Postgres: what it stores, what it refuses, and its settings.

A notification is answered 200 only once its row is committed; a wrong or missing token is 403 and a body
that is not a notification (not JSON, not an object, a bad operation, bad ids, no server time, too big) is
400, and neither leaves a row. The expected rows are built here from the bodies sent, never read from the
code under test.
"""

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from zoho_dagster.notifications import store
from zoho_dagster.notifications.config import (
    NotificationConfigError,
    NotifySettings,
    checked_url,
    load_settings,
)
from zoho_dagster.notifications.receiver import MAX_BODY_BYTES
from zoho_dagster.postgres.engine import make_engine
from zoho_dagster_tests.notifications_support import SECRET, Receiver, running_receiver

CHANNEL = NotifySettings(SECRET).channel_id("Leads")


@pytest.fixture
def receiver(database_url: str) -> Iterator[Receiver]:
    with running_receiver(make_engine(database_url)) as running:
        yield running


def body(**overrides: Any) -> dict[str, Any]:
    """A notification as Zoho sends it (docs/zoho-crm-api.md §3.12), for the Leads channel."""
    base: dict[str, Any] = {
        "server_time": 1_760_000_000_123,
        "query_params": {},
        "module": "Leads",
        "resource_uri": "https://www.zohoapis.com/crm/v6/Leads",
        "ids": ["4150868000000123001", "4150868000000123002"],
        "affected_fields": [{"4150868000000123001": ["Last_Name"]}],
        "operation": "update",
        "channel_id": CHANNEL,
        "token": NotifySettings(SECRET).token(CHANNEL),
    }
    base.update(overrides)
    return base


def rows(database_url: str) -> list[dict[str, Any]]:
    with make_engine(database_url).connect() as conn:
        if not sa.inspect(conn).has_table("notifications", schema=store.SCHEMA):
            return []
        query = sa.select(store.NOTIFICATIONS).order_by(store.NOTIFICATIONS.c.id)
        return [dict(row) for row in conn.execute(query).mappings()]


def test_a_notification_is_stored_before_it_is_answered(receiver: Receiver, database_url: str) -> None:
    answer = requests.post(receiver.url, json=body(), timeout=10)
    assert answer.status_code == 200, answer.text
    [row] = rows(database_url)
    assert answer.json() == {"status": "success", "id": row["id"]}
    assert (row["channel_id"], row["module"], row["operation"]) == (CHANNEL, "Leads", "update")
    assert row["ids"] == ["4150868000000123001", "4150868000000123002"]
    assert row["server_time"] == datetime(2025, 10, 9, 8, 53, 20, 123000, tzinfo=timezone.utc)
    assert row["consumed_at"] is None and row["received_at"] is not None
    # integer channel ids and ids are taken too (Zoho's channel_id is a long)
    numeric = body(channel_id=int(CHANNEL), ids=[4150868000000123003], operation="delete")
    assert requests.post(f"http://127.0.0.1:{receiver.port}/", json=numeric, timeout=10).status_code == 200
    assert rows(database_url)[-1]["ids"] == ["4150868000000123003"]
    assert requests.get(f"http://127.0.0.1:{receiver.port}/healthz", timeout=10).json() == {"status": "ok"}


def test_a_wrong_token_is_403_and_stores_nothing(receiver: Receiver, database_url: str) -> None:
    for overrides in (
        {"token": "not-the-token"},
        {"token": NotifySettings(SECRET).token(CHANNEL)[:-1]},
        {"token": None},
        {"token": 12345},
        {"token": NotifySettings("another-secret-" + "x" * 40).token(CHANNEL)},
        {"channel_id": NotifySettings(SECRET).channel_id("Deals")},  # the token of another channel
        {"channel_id": None},
        {"channel_id": True},
    ):
        sent = {key: value for key, value in body(**overrides).items() if value is not None}
        assert requests.post(receiver.url, json=sent, timeout=10).status_code == 403, overrides
    assert rows(database_url) == []


def test_bad_bodies_are_400_and_store_nothing(receiver: Receiver, database_url: str) -> None:
    bad: list[bytes] = [
        b"",
        b"{not json",
        b'["a", "list"]',
        b"\xff\xfe",
    ]
    for overrides in (
        {"operation": "upsert"},
        {"operation": None},
        {"module": None},
        {"module": ""},
        {"ids": []},
        {"ids": "4150868000000123001"},
        {"ids": ["not-an-id"]},
        {"ids": [True]},
        {"server_time": None},
        {"server_time": "yesterday"},
        {"server_time": -5},
    ):
        sent = {key: value for key, value in body(**overrides).items() if value is not None}
        bad.append(requests.models.complexjson.dumps(sent).encode())
    oversized = body(query_params={"padding": "x" * (MAX_BODY_BYTES + 1)})
    bad.append(requests.models.complexjson.dumps(oversized).encode())
    for payload in bad:
        answer = requests.post(
            receiver.url, data=payload, headers={"Content-Type": "application/json"}, timeout=10
        )
        assert answer.status_code == 400, (payload[:80], answer.status_code, answer.text)
    # A body streamed without Content-Length is cut at the limit all the same.
    chunks = iter([b'{"padding": "', b"x" * MAX_BODY_BYTES, b'"}'])
    assert requests.post(receiver.url, data=chunks, timeout=10).status_code == 400
    assert rows(database_url) == []


def test_without_the_database_health_and_notifications_are_503(database_url: str) -> None:
    engine = make_engine(database_url)
    store.ensure_tables(engine)
    dead = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:1/none", pool_pre_ping=True)
    with running_receiver(engine) as up, running_receiver(dead) as down:
        assert requests.get(f"http://127.0.0.1:{up.port}/healthz", timeout=10).status_code == 200
        assert requests.get(f"http://127.0.0.1:{down.port}/healthz", timeout=10).status_code == 503
        # a notification it cannot store is not acknowledged
        assert requests.post(down.url, json=body(), timeout=10).status_code == 503


def test_channel_ids_and_tokens_derive_from_the_secret() -> None:
    settings = NotifySettings(SECRET)
    assert settings.channel_id("Leads") == NotifySettings(SECRET).channel_id("Leads")
    assert settings.channel_id("Leads") != settings.channel_id("Contacts")
    assert settings.channel_id("Leads") != NotifySettings(SECRET + "!").channel_id("Leads")
    assert len(settings.channel_id("Leads")) == 16 and settings.channel_id("Leads").isdigit()
    token = settings.token(settings.channel_id("Leads"))
    assert len(token) <= 50 and token == NotifySettings(SECRET).token(settings.channel_id("Leads"))
    assert settings.token_matches(settings.channel_id("Leads"), token)
    assert not settings.token_matches(settings.channel_id("Deals"), token)


def test_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZOHO_DAGSTER_NOTIFY_SECRET", raising=False)
    with pytest.raises(NotificationConfigError, match="ZOHO_DAGSTER_NOTIFY_SECRET is unset"):
        load_settings()
    monkeypatch.setenv("ZOHO_DAGSTER_NOTIFY_SECRET", "short")
    with pytest.raises(NotificationConfigError, match="too short"):
        load_settings()
    monkeypatch.setenv("ZOHO_DAGSTER_NOTIFY_SECRET", SECRET)
    monkeypatch.delenv("ZOHO_DAGSTER_NOTIFY_URL", raising=False)
    assert load_settings().url is None
    with pytest.raises(NotificationConfigError, match="ZOHO_DAGSTER_NOTIFY_URL is unset"):
        load_settings(need_url=True)
    monkeypatch.setenv("ZOHO_DAGSTER_NOTIFY_URL", "https://hooks.example.com/zoho")
    assert load_settings(need_url=True).url == "https://hooks.example.com/zoho"
    for url in (
        "https://hooks.example.com/z",
        "http://127.0.0.1:8787/",
        "http://[::1]:1/",
        "http://localhost/",
    ):
        assert checked_url(url) == url
    for url in ("http://hooks.example.com/zoho", "http://10.0.0.5/zoho", "ftp://x/", "https:///nohost"):
        with pytest.raises(NotificationConfigError, match="https"):
            checked_url(url)

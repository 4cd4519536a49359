"""GET /metrics: Prometheus exposition with the figures of the traffic a test makes."""

from __future__ import annotations

import base64

import pytest
from prometheus_client.parser import text_string_to_metric_families

import storage.outbox as outbox_sql
from hub.keys import STORE
from routing.clock import iso
from storage import outcomes as outcome_sql
from storage.outbox import NewMessage
from tests.support.hub import ADMIN
from tests.support.ops import DIRECT, pair, platform_entry, push_session
from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_backends


async def scrape(hub, token=ADMIN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with hub.session.get(hub.base + "/metrics", headers=headers) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


def samples(text):
    """{(sample name, frozenset(labels)): value} for every sample in the exposition."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_needs_the_admin_token_unless_public(hub, start_hub, databases):
    code, _, text = await scrape(hub, token=None)
    assert code == 401 and '"status_code":2000' in text
    code, content_type, text = await scrape(hub)
    assert code == 200 and content_type.startswith("text/plain")
    public = await start_hub(metrics_public=True, database=databases.new("public"))
    code, _, _ = await scrape(public, token=None)
    assert code == 200


async def test_a_read_only_operator_may_scrape_and_do_nothing_else(hub):
    """Prometheus scrapes as a read-only operator (HTTP Basic), never with the admin token."""
    status, body = await hub.admin(
        "POST", "/admin/operators", {"name": "prometheus", "role": "read-only", "password": "scrape-password-1"}
    )
    assert status == 201, body

    def basic(password):
        return {"Authorization": "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode()}

    async with hub.session.get(hub.base + "/metrics", headers=basic("scrape-password-1")) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        assert "ocpi_hub_requests_total" in await r.text()
    async with hub.session.get(hub.base + "/metrics", headers=basic("wrong-password-1")) as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
        assert (await r.json())["status_code"] == 2000
    # The login opens reading, not changing: a POST is refused (and audited).
    status, body, _ = await hub.call("POST", "/admin/invitations", headers=basic("scrape-password-1"), json={})
    assert status == 403 and body["status_code"] == 2000, body


async def test_series_after_known_traffic(hub, make_peer, clock):
    cpo, emsp = await pair(hub, make_peer)
    before = samples((await scrape(hub))[2])
    received0 = len(emsp.received)
    for i in range(4):
        await push_session(hub, cpo, f"M{i}")
    await wait_for(lambda: len(emsp.received) >= received0 + 4)
    # One request the hub refuses: an unknown token on a routed module.
    await hub.call("GET", "/ocpi/2.2.1/locations/sender/", token="not-a-token")

    emsp_id = platform_entry((await hub.admin("GET", "/status"))[1], "EXA")["id"]
    now = iso(clock.now())

    def bury_one(tx):
        dead_id, _ = outbox_sql.enqueue(
            tx, NewMessage(emsp_id, "sessions", "BE/BEC/D", "PUT", emsp.base + "/x", dict(DIRECT), b"{}", now, now)
        )
        outcome_sql.bury(tx, dead_id, error="test", now=now)

    await hub.app[STORE].write(bury_one)

    after = samples((await scrape(hub))[2])
    key = {"module": "sessions", "method": "PUT", "http_status": "200", "ocpi_status": "1000"}
    assert value(after, "ocpi_hub_requests_total", **key) - value(before, "ocpi_hub_requests_total", **key) == 4
    refused = {"module": "locations", "method": "GET", "http_status": "401", "ocpi_status": "2000"}
    assert value(after, "ocpi_hub_requests_total", **refused) == 1
    assert value(after, "ocpi_hub_forwards_total", module="sessions", outcome="delivered") == 4
    assert value(after, "ocpi_hub_forward_latency_seconds_count", module="sessions") == 4
    assert value(after, "ocpi_hub_forward_latency_seconds_sum", module="sessions") > 0
    assert value(after, "ocpi_hub_forward_latency_seconds_bucket", module="sessions", le="+Inf") == 4
    assert value(after, "ocpi_hub_forwards_total", module="hubclientinfo", outcome="delivered") >= 1
    assert value(after, "ocpi_hub_platforms", status="CONNECTED") == 2
    assert value(after, "ocpi_hub_platforms", status="OFFLINE") == 0
    platform = {"platform_id": str(emsp_id), "platform": "EXA"}
    assert value(after, "ocpi_hub_dead_letters", **platform) == 1
    assert value(after, "ocpi_hub_outbox_depth", **platform) == 0
    assert ("ocpi_hub_outbox_oldest_age_seconds", frozenset(platform.items())) in after
    # A platform with nothing queued still has its series (zeros), so alerts see it from the start.
    cpo_id = platform_entry((await hub.admin("GET", "/status"))[1], "BEC")["id"]
    assert after[("ocpi_hub_outbox_depth", frozenset({"platform_id": str(cpo_id), "platform": "BEC"}.items()))] == 0
    # Scrapes are counted too, but never logged as traffic.
    assert value(after, "ocpi_hub_requests_total", module="metrics", method="GET", http_status="200", ocpi_status="")


async def test_two_apps_keep_separate_registries(start_hub, make_peer, databases):
    first = await start_hub()
    second = await start_hub(database=databases.new("other"))
    cpo, _ = await pair(first, make_peer)
    await push_session(first, cpo, "ONLY-FIRST")
    one, two = samples((await scrape(first))[2]), samples((await scrape(second))[2])
    key = {"module": "sessions", "method": "PUT", "http_status": "200", "ocpi_status": "1000"}
    assert value(one, "ocpi_hub_requests_total", **key) == 1
    assert value(two, "ocpi_hub_requests_total", **key) == 0

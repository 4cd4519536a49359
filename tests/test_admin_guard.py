"""Failed admin logins: WARNING with the client address, WWW-Authenticate, a limit per address."""

from __future__ import annotations

import logging

from tests.support.hub import ADMIN


async def admin_get(hub, token: str | None, headers: dict[str, str] | None = None):
    hdrs = dict(headers or {})
    if token is not None:
        hdrs["Authorization"] = f"Bearer {token}"
    async with hub.session.get(hub.base + "/admin/platforms", headers=hdrs) as r:
        return r.status, r.headers, await r.json()


async def test_a_failure_is_a_warning_with_the_address_and_a_challenge(hub, caplog):
    with caplog.at_level(logging.WARNING, logger="hub.admin.guard"):
        status, headers, body = await admin_get(hub, "wrong")
    assert (status, body["status_code"]) == (401, 2000)
    assert headers["WWW-Authenticate"] == 'Bearer realm="ocpi-hub admin", error="invalid_token"'
    (record,) = [r for r in caplog.records if r.name == "hub.admin.guard"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "admin authentication failed from 127.0.0.1: GET /admin/platforms (wrong token)"
    status, headers, _ = await admin_get(hub, None)
    assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="ocpi-hub admin"'


async def test_too_many_failures_from_one_address_are_refused_until_the_window_passes(start_hub, clock):
    hub = await start_hub(admin_auth_max_failures=3, admin_auth_block_seconds=60)
    for _ in range(3):
        assert (await admin_get(hub, "guess"))[0] == 401
    status, headers, body = await admin_get(hub, ADMIN)  # even the right token, from this address
    assert (status, headers["Retry-After"], body["status_code"]) == (429, "60", 2000)
    clock.advance(61)
    assert (await admin_get(hub, ADMIN))[0] == 200
    # A success clears the count: three more failures are needed to be blocked again.
    assert [(await admin_get(hub, "guess"))[0] for _ in range(3)] == [401, 401, 401]
    assert (await admin_get(hub, "guess"))[0] == 429


async def test_forwarded_for_counts_only_when_the_proxy_is_trusted(start_hub, clock, caplog):
    hub = await start_hub(admin_auth_max_failures=2, trust_proxy=True)
    spoof = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}  # the last entry is our proxy's
    with caplog.at_level(logging.WARNING, logger="hub.admin.guard"):
        for _ in range(2):
            assert (await admin_get(hub, "guess", spoof))[0] == 401
    assert "admin authentication failed from 198.51.100.7" in caplog.text
    assert (await admin_get(hub, ADMIN, spoof))[0] == 429
    assert (await admin_get(hub, ADMIN, {"X-Forwarded-For": "192.0.2.1"}))[0] == 200  # another client

    untrusting = await start_hub(
        admin_auth_max_failures=2, database=hub.settings.database_path.with_name("other.sqlite3")
    )
    for _ in range(2):
        assert (await admin_get(untrusting, "guess", {"X-Forwarded-For": "192.0.2.50"}))[0] == 401
    # Not trusted: the header is ignored, the TCP peer (127.0.0.1) is the one blocked.
    assert (await admin_get(untrusting, ADMIN, {"X-Forwarded-For": "192.0.2.51"}))[0] == 429

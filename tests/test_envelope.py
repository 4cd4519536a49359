"""Every answer is an OCPI envelope with application/json, whatever the input (DESIGN-NOTES.md, Request pipeline)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from routing.registry.registration import Registry
from tests.support.hub import ADMIN

CREDS = "/ocpi/2.2.1/credentials"


def assert_error(status: int, body: Any, headers: Any, http: int, code: int) -> None:
    assert status == http, body
    assert headers["Content-Type"].startswith("application/json")
    assert isinstance(body, dict), body
    assert body["status_code"] == code
    assert isinstance(body["status_message"], str) and body["status_message"]
    assert body["timestamp"] == "2026-11-25T12:00:00.000Z"  # the injected clock
    assert "Traceback" not in str(body)


@pytest.mark.parametrize("path", ["/nope", "/ocpi/nope", "/ocpi/2.2.1/nomodule/sender/", "/ocpi/2.0", "/admin/nothing"])
async def test_unknown_path_is_404_envelope(hub, path):
    for headers in ({}, {"Authorization": f"Bearer {ADMIN}"}):
        status, body, hdrs = await hub.call("GET", path, headers=headers)
        assert_error(status, body, hdrs, 404, 2000)


@pytest.mark.parametrize(
    ("method", "path"),
    [("PATCH", CREDS), ("POST", "/ocpi/versions"), ("DELETE", "/ocpi/2.2.1"), ("DELETE", "/admin/invitations")],
)
async def test_wrong_method_is_405_envelope(hub, method, path):
    token_a = await hub.invite()
    status, body, hdrs = await hub.call(method, path, token=token_a, json={})
    assert_error(status, body, hdrs, 405, 2000)


async def test_unparsable_json_is_400(hub):
    token_a = await hub.invite()
    # A lone surrogate escape parses in Python but is no character: it cannot be stored as UTF-8.
    for raw in (b"{not json", b"\xff\xfe", b'{"token": ', b'{"token": "\\ud800"}', b'{"": "\\uDFFF"}'):
        status, body, hdrs = await hub.call("POST", CREDS, token=token_a, data=raw)
        assert_error(status, body, hdrs, 400, 2000)
        assert "not valid JSON" in body["status_message"]
    status, body, hdrs = await hub.call(
        "POST", "/admin/invitations", data=b"{oops", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert_error(status, body, hdrs, 400, 2000)


async def test_empty_body_on_post_is_400(hub):
    token_a = await hub.invite()
    for raw in (b"", b"   \n"):
        status, body, hdrs = await hub.call("POST", CREDS, token=token_a, data=raw)
        assert_error(status, body, hdrs, 400, 2000)
        assert "empty" in body["status_message"]
    # nothing consumed the token A
    assert (await hub.call("GET", "/ocpi/versions", token=token_a))[0] == 200


async def test_oversized_body_is_413(start_hub):
    hub = await start_hub(max_body_bytes=1024)
    token_a = await hub.invite()
    big = b'{"name": "' + b"x" * 4096 + b'"}'
    status, body, hdrs = await hub.call(
        "POST", "/admin/invitations", data=big, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert_error(status, body, hdrs, 413, 2000)
    status, body, hdrs = await hub.call("POST", CREDS, token=token_a, data=big)
    assert_error(status, body, hdrs, 413, 2000)
    assert (await hub.admin("POST", "/admin/invitations", {"name": "small"}))[0] == 201


async def test_unexpected_exception_is_500_without_traceback(hub, monkeypatch):
    token_a = await hub.invite()

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail at /srv/hub/registration.py line 42")

    monkeypatch.setattr(Registry, "invite", boom)
    monkeypatch.setattr(Registry, "register", boom)
    status, body, hdrs = await hub.call(
        "POST", "/admin/invitations", json={"name": "x"}, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert_error(status, body, hdrs, 500, 3000)
    assert "secret internal detail" not in str(body) and "registration.py" not in str(body)
    status, body, hdrs = await hub.call("POST", CREDS, token=token_a, json={"token": "x"})
    assert_error(status, body, hdrs, 500, 3000)
    assert "RuntimeError" not in str(body)


async def test_ids_echoed_when_given(hub):
    token_a = await hub.invite()
    given = {"X-Request-ID": "req-123", "X-Correlation-ID": "corr-456"}
    for method, path, token in (("GET", "/ocpi/versions", token_a), ("GET", "/nope", None), ("GET", CREDS, "bad")):
        status, _, hdrs = await hub.call(method, path, token=token, headers=given)
        assert (hdrs["X-Request-ID"], hdrs["X-Correlation-ID"]) == ("req-123", "corr-456"), (path, status)


async def test_ids_created_when_missing(hub):
    token_a = await hub.invite()
    seen: set[str] = set()
    for path, token in (("/ocpi/versions", token_a), ("/ocpi/versions", token_a), ("/nope", None), (CREDS, None)):
        _, _, hdrs = await hub.call("GET", path, token=token)
        for name in ("X-Request-ID", "X-Correlation-ID"):
            uuid.UUID(hdrs[name])  # a real UUID
            seen.add(hdrs[name])
    assert len(seen) == 8  # fresh ids for every request


async def test_insane_request_id_is_replaced(hub):
    _, _, hdrs = await hub.call("GET", "/health", headers={"X-Request-ID": "x" * 300})
    assert len(hdrs["X-Request-ID"]) == 36


@pytest.mark.parametrize(
    "path", ["/ocpi/versions", "/ocpi/versions/", "/ocpi/2.2.1", "/ocpi/2.2.1/", CREDS, CREDS + "/"]
)
async def test_trailing_slash_optional(hub, path):
    token_a = await hub.invite()
    status, body, hdrs = await hub.call("GET", path, token=token_a)
    assert status == 200 and body["status_code"] == 1000, body
    assert hdrs["Content-Type"].startswith("application/json")


async def test_version_details_publish_credentials_with_slash(hub):
    token_a = await hub.invite()
    _, body, _ = await hub.call("GET", "/ocpi/versions", token=token_a)
    assert body["data"] == [{"version": v, "url": hub.base + "/ocpi/" + v} for v in ("2.3.0", "2.2.1", "2.1.1")]
    _, body, _ = await hub.call("GET", "/ocpi/2.2.1", token=token_a)
    assert body["data"]["version"] == "2.2.1"
    assert {"identifier": "credentials", "role": "SENDER", "url": hub.base + CREDS + "/"} in body["data"]["endpoints"]


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Token " + ADMIN, "Bearer", f"Basic {ADMIN}"])
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/admin/platforms"), ("POST", "/admin/invitations"), ("GET", "/status")]
)
async def test_admin_needs_bearer_token(hub, auth, method, path):
    headers = {} if auth is None else {"Authorization": auth}
    status, body, hdrs = await hub.call(method, path, json={"name": "x"}, headers=headers)
    assert_error(status, body, hdrs, 401, 2000)
    assert (await hub.admin("GET", "/admin/platforms"))[1] == []  # no invitation slipped through


async def test_health_without_auth(hub):
    status, body, hdrs = await hub.call("GET", "/health")
    assert (status, body) == (200, {"status": "ok"})
    assert hdrs["Content-Type"].startswith("application/json")


async def test_status_public_when_configured(start_hub):
    hub = await start_hub(status_public=True)
    status, body, _ = await hub.call("GET", "/status")
    assert status == 200 and body["status"] == "ok"

"""Traffic log: one message followed across its legs by correlation id; no token or uid ever logged."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading

import pytest
from aiohttp import web

from hub.keys import STORE
from hub.observe.logs import JsonFormatter, StderrHandler, lines_together
from hub.observe.traffic.recorder import module_of, redact_path, safe_query
from storage import traffic as traffic_sql
from tests.support.fakes import envelope
from tests.support.hub import ADMIN
from tests.support.ops import EXAMPLES, pair, push_session
from tests.support.waiting import wait_for

pytestmark = pytest.mark.both_backends

UID = "UID-SECRET-0123456789"


async def traffic(hub, **query):
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    code, rows = await hub.admin("GET", "/admin/traffic" + (f"?{qs}" if qs else ""))
    assert code == 200, rows
    return rows


async def test_one_message_found_across_its_legs(hub, make_peer):
    cpo, emsp = await pair(hub, make_peer)
    await push_session(hub, cpo, "LEG1", correlation_id="corr-legs-1")
    await wait_for(lambda: bool(emsp.requests_to("/sessions/receiver/BE/BEC/LEG1")))

    rows = await traffic(hub, correlation_id="corr-legs-1")
    assert [(r["direction"], r["module"], r["method"]) for r in rows] == [
        ("out", "sessions", "PUT"),
        ("in", "sessions", "PUT"),
    ]  # the outbound leg finishes first: the answer to the CPO waits for the eMSP's
    out, inbound = rows
    assert inbound["path"] == "/ocpi/2.2.1/sessions/receiver/BE/BEC/LEG1"
    assert (inbound["from_party"], inbound["to_party"]) == ("BE*BEC", "NL*EXA")
    assert (inbound["http_status"], inbound["ocpi_status"]) == (200, 1000)
    assert out["path"] == emsp.base + "/ocpi/2.2.1/sessions/receiver/BE/BEC/LEG1"
    assert (out["from_party"], out["to_party"], out["attempt"]) == ("BE*BEC", "NL*EXA", 1)
    assert (out["http_status"], out["ocpi_status"]) == (200, 1000)
    # A new X-Request-ID per hop, the same X-Correlation-ID, and the ids the eMSP really got.
    got = emsp.requests_to("/sessions/receiver/BE/BEC/LEG1")[0]
    assert out["request_id"] == got.headers["X-Request-ID"] != inbound["request_id"]
    assert out["platform_id"] != inbound["platform_id"] and out["latency_ms"] > 0
    assert (await traffic(hub, correlation_id="corr-legs-1", limit=1)) == [inbound]


async def test_table_keeps_only_the_newest_rows(start_hub, make_peer):
    hub = await start_hub(traffic_log_rows=5)
    cpo, _ = await pair(hub, make_peer)
    for i in range(4):
        await push_session(hub, cpo, f"R{i}", correlation_id=f"ring-{i}")
    rows = await traffic(hub, limit=100)
    assert len(rows) == 5 and await traffic_sql.count(hub.app[STORE]) == 5
    assert rows[-1]["correlation_id"] == "ring-3"
    assert await traffic(hub, correlation_id="ring-0") == []


async def test_bad_limit_is_refused(hub):
    code, body = await hub.admin("GET", "/admin/traffic?limit=0")
    assert code == 400 and body["status_code"] == 2001
    code, _ = await hub.admin("GET", "/admin/traffic", token="wrong")
    assert code == 401


async def test_no_token_and_no_uid_in_logs_or_table(hub, make_peer, caplog):
    # Everything at INFO (the default), the hub's own packages at DEBUG. (aiosqlite's DEBUG lines
    # print SQL parameters, token_out included: never run a hub with aiosqlite at DEBUG.)
    # aiohttp's access log prints raw paths (the fake peers share it): WARNING, as hub.observe.logs.setup_logging
    # sets it. First, because each set_level also sets caplog's handler level.
    caplog.set_level(logging.WARNING, logger="aiohttp.access")
    caplog.set_level(logging.INFO)
    for name in ("hub", "routing", "storage", "config"):
        caplog.set_level(logging.DEBUG, logger=name)
    token_a_cpo = await hub.invite("BEC")
    cpo = await make_peer(("BE", "BEC", "CPO"))
    token_b_cpo = cpo.token_for_hub
    await cpo.register_with(hub.versions_url, token_a_cpo)
    token_a_emsp = await hub.invite("EXA")
    emsp = await make_peer(("NL", "EXA", "EMSP"))
    token_b_emsp = emsp.token_for_hub
    await emsp.register_with(hub.versions_url, token_a_emsp)
    await wait_for(lambda: bool(cpo.requests_to("/hubclientinfo/")))

    # Token push eMSP -> CPO.
    token = json.loads((EXAMPLES / "token_example_2_full_rfid.json").read_text())
    token.update(country_code="NL", party_id="EXA", uid=UID, contract_id="NL-EXA-C12345678-X")
    to_cpo = {
        "OCPI-from-country-code": "NL",
        "OCPI-from-party-id": "EXA",
        "OCPI-to-country-code": "BE",
        "OCPI-to-party-id": "BEC",
        "X-Correlation-ID": "corr-token",
    }
    code, body, _ = await hub.call(
        "PUT", f"/ocpi/2.2.1/tokens/receiver/NL/EXA/{UID}?type=RFID", token=emsp.hub_token, json=token, headers=to_cpo
    )
    assert code == 200 and body["status_code"] == 1000, body
    await wait_for(lambda: bool(cpo.requests_to(UID)))

    # Real-time authorize CPO -> eMSP.
    async def allowed(request, body):
        return web.json_response(envelope({"allowed": "ALLOWED", "token": token}))

    emsp.module_responder = allowed
    to_emsp = {
        "OCPI-from-country-code": "BE",
        "OCPI-from-party-id": "BEC",
        "OCPI-to-country-code": "NL",
        "OCPI-to-party-id": "EXA",
        "X-Correlation-ID": "corr-authorize",
    }
    code, body, _ = await hub.call(
        "POST", f"/ocpi/2.2.1/tokens/sender/{UID}/authorize?type=RFID", token=cpo.hub_token, json={}, headers=to_emsp
    )
    assert code == 200 and body["data"]["allowed"] == "ALLOWED", body
    assert emsp.requests_to(f"/{UID}/authorize")

    rows = await traffic(hub, limit=1000)
    secrets = {
        "token A (CPO)": token_a_cpo,
        "token A (eMSP)": token_a_emsp,
        "token B (CPO)": token_b_cpo,
        "token B (eMSP)": token_b_emsp,
        "token C (CPO)": cpo.hub_token,
        "token C (eMSP)": emsp.hub_token,
        "token the hub uses for the CPO": cpo.token_for_hub,
        "token the hub uses for the eMSP": emsp.token_for_hub,
        "admin token": ADMIN,
        "token uid": UID,
        "contract id": token["contract_id"],
    }
    table = json.dumps(rows)
    paths = {r["path"] for r in rows if r["module"] == "tokens"}
    assert paths == {
        "/ocpi/2.2.1/tokens/receiver/NL/EXA/{redacted}?type=RFID",
        f"{cpo.base}/ocpi/2.2.1/tokens/receiver/NL/EXA/{{redacted}}?type=RFID",
        "/ocpi/2.2.1/tokens/sender/{redacted}/authorize?type=RFID",
        f"{emsp.base}/ocpi/2.2.1/tokens/sender/{{redacted}}/authorize?type=RFID",
    }
    traffic_lines = [r for r in caplog.records if r.name == "hub.observe.traffic.recorder"]
    assert len(traffic_lines) >= len(rows)
    logged = [(r.name, f"{r.getMessage()} {r.__dict__}") for r in caplog.records]
    for what, secret in secrets.items():
        assert secret not in table, f"{what} in the traffic table"
        leaks = [f"{name}: {text[:300]}" for name, text in logged if secret in text]
        assert not leaks, f"{what} in the logs: {leaks}"


def test_redaction_rules():
    assert redact_path("/ocpi/2.2.1/tokens/receiver/NL/EXA/abc") == "/ocpi/2.2.1/tokens/receiver/NL/EXA/{redacted}"
    assert redact_path("/ocpi/2.2.1/tokens/sender/abc/authorize") == "/ocpi/2.2.1/tokens/sender/{redacted}/authorize"
    assert redact_path("/ocpi/tokens/abc/authorize/") == "/ocpi/tokens/{redacted}/authorize/"
    assert redact_path("/ocpi/2.2.1/tokens/sender/") == "/ocpi/2.2.1/tokens/sender/"
    assert redact_path("/ocpi/2.2.1/tokens/receiver/odd/shape/x/y") == "/ocpi/2.2.1/tokens/receiver/" + "/".join(
        ["{redacted}"] * 4
    )
    # A partner endpoint without a 'tokens' segment: the endpoint path tells where the tail starts.
    assert redact_path("/emsp/t/abc/authorize", module="tokens", base_path="/emsp/t") == "/emsp/t/{redacted}/authorize"
    assert redact_path("/emsp/t/abc/authorize", module="tokens") == "/{redacted}"
    assert redact_path("/ocpi/2.2.1/sessions/receiver/BE/BEC/S1") == "/ocpi/2.2.1/sessions/receiver/BE/BEC/S1"
    assert safe_query([("type", "RFID"), ("token", "x"), ("offset", "5")]) == "?type=RFID&offset=5"
    assert safe_query([("uid", "x")]) == ""
    assert [
        module_of(p) for p in ("/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/cdrs/sender", "/ocpi/smartcharging")
    ] == [
        "versions",
        "versions",
        "cdrs",
        "chargingprofiles",
    ]
    assert [module_of(p) for p in ("/ocpi/2.2.1/nope", "/whatever", "/admin/platforms", "/ocpi/registrations")] == [
        "unknown",
        "unknown",
        "admin",
        "credentials",
    ]


async def test_calls_to_a_platform_registered_after_start_are_attributed(hub, make_peer):
    """The endpoint prefix index catches up on platforms that changed since start (no full reload)."""
    cpo, _ = await pair(hub, make_peer)  # both registered after the hub started
    before = max(r["id"] for r in await traffic(hub, limit=100))
    # A credentials PUT makes the hub read the CPO's versions again: a call without log context.
    status, _, _ = await hub.call("PUT", "/ocpi/2.2.1/credentials", token=cpo.hub_token, json=cpo.credentials_body())
    assert status == 200
    rows = await traffic(hub, limit=100)
    versions = cpo.base + "/ocpi/versions"
    reads = [r for r in rows if r["id"] > before and r["direction"] == "out" and r["path"].startswith(versions)]
    assert reads and all(r["module"] == "versions" and r["platform_id"] is not None for r in reads), reads


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_a_batch_of_traffic_lines_is_one_write_and_other_threads_are_not_held(monkeypatch) -> None:
    stream = _CountingStream()
    monkeypatch.setattr(sys, "stderr", stream)
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("tests.lines_together")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        with lines_together():
            for n in range(50):
                log.info("line %d", n)
            # A line from another thread meanwhile is written at once, not held with ours.
            other = threading.Thread(target=lambda: log.info("from another thread"))
            other.start()
            other.join()
            assert stream.writes == 1 and "from another thread" in stream.getvalue()
        log.info("after the block")
    finally:
        log.removeHandler(handler)
    lines = [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]
    assert lines == ["from another thread", *(f"line {n}" for n in range(50)), "after the block"]
    assert stream.writes == 3  # the other thread's line, the batch in one write, the line after it


def test_a_json_line_carries_what_orjson_refuses_and_keeps_its_fields() -> None:
    """orjson writes the lines; an extra it cannot carry (an int past 64 bits, a key that is not
    text) still gives one whole JSON line, as json.dumps wrote it, never a logging error."""
    formatter = JsonFormatter(os_pid=42)

    def line(**extra: object) -> dict[str, object]:
        record = logging.LogRecord("hub.test", logging.INFO, __file__, 1, "to %s", ("NL*ABC",), None)
        record.__dict__.update(extra)
        text = formatter.format(record)
        assert "\n" not in text
        return json.loads(text)

    plain = line(traffic={"platform_id": 3, "note": None, "path": "/ocpi/2.2.1/sessions/NL/ABC/ü"})
    assert plain["msg"] == "to NL*ABC" and plain["level"] == "INFO" and plain["logger"] == "hub.test"
    assert plain["pid"] == 42 and plain["ts"].endswith("Z")
    assert plain["traffic"] == {"platform_id": 3, "note": None, "path": "/ocpi/2.2.1/sessions/NL/ABC/ü"}
    assert line(count=2**70)["count"] == 2**70
    assert line(by_id={1: "a"})["by_id"] == {"1": "a"}
    assert line(thing=object())["thing"].startswith("<object object")

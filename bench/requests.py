"""The OCPI requests the load generator sends: directed session PUTs, EVSE status PATCHes, location PUTs.

Each builder returns a ``RequestFn`` for bench.load. The same function is pointed at the hub or at
the baseline proxy by its ``base`` URL, so both get byte-for-byte the same traffic.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import aiohttp

from bench.load import RequestFn
from bench.peers import Peer
from bench.seed import location_example, session_example

JSON = {"Content-Type": "application/json"}


async def _ok(response: aiohttp.ClientResponse, counts: Counter[str] | None) -> bool:
    payload = await response.read()
    try:
        code = json.loads(payload).get("status_code")
    except (ValueError, AttributeError):
        code = None
    ok = response.status == 200 and code == 1000
    if counts is not None:
        counts["ok" if ok else f"http{response.status}/ocpi{code}"] += 1
        if ok and b"queued" in payload:
            counts["queued"] += 1
    return ok


def session_push(
    http: aiohttp.ClientSession,
    base: str,
    sender: Peer,
    receiver: Peer | list[Peer],
    *,
    tag: str,
    track: bool = False,
    counts: Counter[str] | None = None,
) -> RequestFn:
    """PUT /sessions/receiver/{cc}/{pid}/{id} with OCPI-to headers (a directed, durable push).

    With a list of receivers, request n goes to receiver n mod len. With ``track`` the
    correlation id is ``t-{tag}-{n}`` so the receiving peer records its arrival.
    """
    receivers = receiver if isinstance(receiver, list) else [receiver]
    template = session_example()
    template.update(country_code=sender.country_code, party_id=sender.party_id)
    fixed = {**JSON, **sender.auth()} if sender.hub_token else dict(JSON)
    headers_by_receiver = [{**fixed, **sender.routing(r)} for r in receivers]

    async def fn(n: int) -> bool:
        session_id = f"{tag}{n:08d}"
        template["id"] = session_id
        body = json.dumps(template, separators=(",", ":")).encode()
        headers = headers_by_receiver[n % len(receivers)]
        if track:
            headers = {**headers, "X-Correlation-ID": f"t-{tag}-{n}"}
        url = f"{base}/ocpi/2.2.1/sessions/receiver/{sender.country_code}/{sender.party_id}/{session_id}"
        async with http.put(url, data=body, headers=headers) as r:
            return await _ok(r, counts)

    return fn


def location_put(
    http: aiohttp.ClientSession, base: str, sender: Peer, location_id: str, correlation_id: str
) -> RequestFn:
    """PUT a whole Location without OCPI-to headers: the hub stores it and broadcasts it."""
    body = location_example()
    body.update(country_code=sender.country_code, party_id=sender.party_id, id=location_id)
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = {**JSON, **sender.auth(), **sender.routing(None), "X-Correlation-ID": correlation_id}

    async def fn(_: int) -> bool:
        url = f"{base}/ocpi/2.2.1/locations/receiver/{sender.country_code}/{sender.party_id}/{location_id}"
        async with http.put(url, data=data, headers=headers) as r:
            return await _ok(r, None)

    return fn


def evse_uid() -> str:
    """The EVSE uid of the example location (PATCH targets it)."""
    evses: list[dict[str, Any]] = location_example().get("evses") or [{"uid": "1"}]
    return str(evses[0]["uid"])


def status_patch(
    http: aiohttp.ClientSession,
    base: str,
    sender: Peer,
    location_ids: list[str],
    *,
    tag: str,
    sent_at: dict[int, float],
) -> RequestFn:
    """PATCH an EVSE status without OCPI-to headers (broadcast); ``sent_at[n]`` records when n left."""
    uid = evse_uid()
    fixed = {**JSON, **(sender.auth() if sender.hub_token else {}), **sender.routing(None)}
    statuses = ("CHARGING", "AVAILABLE")

    async def fn(n: int) -> bool:
        location_id = location_ids[n % len(location_ids)]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{n % 1000:03d}Z"
        body = json.dumps({"status": statuses[n % 2], "last_updated": stamp}).encode()
        headers = {**fixed, "X-Correlation-ID": f"t-{tag}-{n}"}
        url = f"{base}/ocpi/2.2.1/locations/receiver/{sender.country_code}/{sender.party_id}/{location_id}/{uid}"
        sent_at[n] = time.perf_counter()
        async with http.patch(url, data=body, headers=headers) as r:
            return await _ok(r, None)

    return fn

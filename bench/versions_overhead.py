"""``python -m bench.versions_overhead``: what the version translation step costs per message.

Same-version traffic (2.2.1 to 2.2.1, the bench's whole load) only passes through
``routing.versions.wire.inbound`` and ``outbound`` without translating; this measures that
added cost, and for comparison a 2.2.1 -> 2.3.0 translation, on the official Location example.
The end-to-end scenarios (``python -m bench``) are too noisy on a shared 2-core machine to
resolve a few microseconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from routing.messages import Inbound, Leg, PartyRef, RoutingHeaders
from routing.versions import wire
from storage.models import Party, Platform

STAMP = datetime(2026, 12, 6, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parent.parent / "tests/fixtures/ocpi-examples-2.2.1/location_example.json"


def _platform(version: str) -> Platform:
    party = Party(platform_id=1, country_code="BE", party_id="BEC", role="CPO", business_details={}, last_updated="")
    return Platform(
        id=1,
        name="bench",
        status="CONNECTED",
        versions_url="http://127.0.0.1/ocpi/versions",
        version=version,
        token_out="t",
        send_base64=True,
        initiated_by="party",
        created_at=STAMP,
        updated_at=STAMP,
        last_seen_in=None,
        last_seen_out=None,
        parties=(party,),
    )


async def per_message(receiver_version: str, n: int) -> float:
    """Microseconds per message through wire.inbound and wire.outbound, to a receiver on this version."""
    body = json.loads(EXAMPLE.read_text())
    raw = json.dumps(body).encode()
    caller = _platform("2.2.1")
    req = Inbound(
        module="locations",
        interface="RECEIVER",
        method="PUT",
        segments=["BE", "BEC", "LOC1"],
        query={},
        query_string="",
        routing=RoutingHeaders(None, None),
        request_id="r",
        correlation_id="c",
        caller=caller,
        flow=wire.open_flow(caller),
        raw_body=raw,
        body=body,
    )
    leg = Leg(
        method="PUT",
        url="http://127.0.0.1/x",
        platform=_platform(receiver_version),
        routing=RoutingHeaders(PartyRef("BE", "BEC"), PartyRef("NL", "TNM")),
        correlation_id="c",
        body=raw,
        module="locations",
        flow=req.flow,
    )
    started = time.perf_counter()
    for _ in range(n):
        await wire.inbound(req)
        await wire.outbound(leg)
    return (time.perf_counter() - started) / n * 1e6


async def main() -> None:
    """Print the microseconds per message for both cases."""
    same = await per_message("2.2.1", 20000)
    cross = await per_message("2.3.0", 2000)
    print(f"2.2.1 -> 2.2.1 (no translation): {same:.1f} us/message added")
    print(f"2.2.1 -> 2.3.0 (translated):     {cross:.0f} us/message")


if __name__ == "__main__":
    asyncio.run(main())

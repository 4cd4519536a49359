"""Helpers for the roaming agreement tests: agreements via the admin API, a network that waits for nothing."""

from __future__ import annotations

from typing import Any

from tests.support.fakes import FakePlatform, Received
from tests.support.hub import HubHandle
from tests.support.waiting import wait_for

CSV_HEADER = (
    "country_code_a,party_id_a,role_a,country_code_b,party_id_b,role_b,modules,state,valid_from,valid_to,reference"
)


def side(party: tuple[str, str, str]) -> dict[str, str]:
    """A party of an agreement as the admin API takes it."""
    return {"country_code": party[0], "party_id": party[1], "role": party[2]}


async def agree(
    hub: HubHandle, a: tuple[str, str, str], b: tuple[str, str, str], *, expect: int = 201, **fields: Any
) -> dict[str, Any]:
    """POST /admin/agreements for two parties; the created agreement (or the error body)."""
    status, body = await hub.admin("POST", "/admin/agreements", {"parties": [side(a), side(b)], **fields})
    assert status == expect, body
    return dict(body)


async def import_csv(hub: HubHandle, text: str) -> tuple[int, Any]:
    """POST /admin/agreements/import with a CSV body."""
    headers = {"Authorization": f"Bearer {hub.settings.admin_token.get_secret_value()}", "Content-Type": "text/csv"}  # type: ignore[union-attr]
    async with hub.session.post(hub.base + "/admin/agreements/import", data=text.encode(), headers=headers) as r:
        return r.status, await r.json()


def client_infos(peer: FakePlatform) -> list[Received]:
    """The HubClientInfo PUTs a fake received."""
    return [r for r in peer.received if "/hubclientinfo/" in r.path and r.method == "PUT"]


def told(peer: FakePlatform) -> dict[tuple[str, str], str]:
    """What a fake was last told by ClientInfo PUTs: (country_code, party_id) -> status."""
    out: dict[tuple[str, str], str] = {}
    for r in client_infos(peer):
        out[(r.body["country_code"], r.body["party_id"])] = r.body["status"]
    return out


async def wait_told(peer: FakePlatform, party: tuple[str, ...], status: str) -> None:
    """Wait until a fake's latest ClientInfo about ``party`` says ``status``."""
    await wait_for(lambda: told(peer).get((party[0], party[1])) == status)

"""Credentials and version discovery per OCPI version, for the registry's narrow call sites.

The registry works in 2.2.1 terms; these functions turn a partner's Credentials body into the
2.2.1 shape (2.1.1: the operator-named role fills the missing one), render the hub's own
Credentials in the partner's version, and read a partner's version details (2.1.1 endpoints
have no interface role: one URL serves both).
"""

from __future__ import annotations

from typing import Any

from routing.protocol.errors import InvalidParameters, UnsupportedVersion
from routing.protocol.vocab import InterfaceRole
from routing.versions import CREDENTIALS, SUPPORTED, pick_version
from routing.versions.credentials_base import CoreCredentials, CredentialsShapeError, party_of
from storage.models import Endpoint


def core_body(version: str, body: Any, role_hint: str | None) -> Any:
    """A partner's Credentials body in ``version`` as a 2.2.1-shaped body (2001 if it cannot be)."""
    if version == "2.2.1" or version not in CREDENTIALS:
        return body
    if isinstance(body, list) and len(body) == 1:  # list-wrapped data
        body = body[0]
    if not isinstance(body, dict):
        raise InvalidParameters("invalid credentials: not an object")
    try:
        creds: CoreCredentials = CREDENTIALS[version].parse(body, role_hint)
    except CredentialsShapeError as exc:
        raise InvalidParameters(f"invalid credentials: {exc}") from exc
    return {"token": creds.token, "url": creds.url, "roles": [p.as_role() for p in creds.parties]}


def hub_body(version: str, core: dict[str, Any]) -> dict[str, Any]:
    """The hub's 2.2.1 Credentials body (one HUB role) in ``version``."""
    if version == "2.2.1" or version not in CREDENTIALS:
        return core
    parties = [party_of(r) for r in core["roles"]]
    return dict(CREDENTIALS[version].render(CoreCredentials(core["token"], core["url"], parties)))


def choose(offered: list[str], want: str | None) -> str:
    """The version to use: the one the partner registered on, else the highest both speak."""
    if want is not None:
        if want not in offered:
            raise UnsupportedVersion(f"partner registered on {want} but does not list it")
        return want
    chosen = pick_version(offered)
    if chosen is None:
        listed = ", ".join(offered) or "none"
        raise UnsupportedVersion(f"partner offers {listed}; this hub speaks {', '.join(SUPPORTED)}")
    return chosen


def endpoints(version: str, found: list[Endpoint]) -> list[Endpoint]:
    """A partner's endpoints; a 2.1.1 module URL serves as both SENDER and RECEIVER."""
    if version != "2.1.1":
        return found
    out: list[Endpoint] = []
    for ep in found:
        out += [Endpoint(module=ep.module, role=r, url=ep.url) for r in (InterfaceRole.SENDER, InterfaceRole.RECEIVER)]
    return out

"""Reading a partner's versions and version details (credentials.asciidoc, registration).

Any failure to use the partner's API is 3001, no version the hub speaks (2.1.1, 2.2.1, 2.3.0)
is 3002, and version details without a credentials endpoint are 3003 (docs/DESIGN-NOTES.md,
What real peers do).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from routing.peers.client import PeerClient
from routing.peers.exchange import PeerResponse
from routing.protocol.errors import (
    NoMatchingEndpoints,
    OcpiError,
    UnableToUseClientApi,
)
from routing.protocol.models import Version, VersionDetails
from routing.protocol.reader import Shape
from routing.protocol.vocab import InterfaceRole, ModuleID
from routing.versions import registration
from storage.models import Endpoint

LOGGER = logging.getLogger(__name__)

REQUIRED_MODULES = (ModuleID.CREDENTIALS,)


@dataclass(frozen=True)
class PeerApi:
    """What we learned of a partner: the version we use and its endpoints."""

    versions_url: str
    version: str
    endpoints: tuple[Endpoint, ...]
    send_base64: bool = True  # how the partner reads our token in the Authorization header

    def url(self, module: str, role: str | None = None) -> str | None:
        """The endpoint URL for a module (and role, if given)."""
        for ep in self.endpoints:
            if ep.module == module and (role is None or ep.role == role):
                return ep.url
        return None


def unwrap_data(response: PeerResponse, what: str) -> Any:
    """The ``data`` of a successful OCPI answer, or 3001 explaining what went wrong."""
    if not response.is_ocpi:
        raise UnableToUseClientApi(f"{what}: {response.describe()}")
    if response.status >= 300 or response.ocpi_status is None or not 1000 <= response.ocpi_status < 2000:
        raise UnableToUseClientApi(f"{what}: {response.describe()}")
    return response.data


async def _get(client: PeerClient, url: str, token: str, send_base64: bool, what: str, expect: Shape) -> PeerResponse:
    try:
        return await client.send("GET", url, token=token, send_base64=send_base64, expect=expect)
    except OcpiError as exc:  # 4002/4003 from the client boundary: for a handshake that is 3001
        raise UnableToUseClientApi(f"{what}: {exc.message}") from exc


async def _get_trying_encodings(
    client: PeerClient, url: str, token: str, send_base64: bool, expect: Shape
) -> tuple[PeerResponse, bool]:
    """GET with the token encoded one way; after a 401, once the other way. Returns what worked."""
    what = f"GET {url}"
    response = await _get(client, url, token, send_base64, what, expect)
    if response.status == 401:
        retry = await _get(client, url, token, not send_base64, what, expect)
        if retry.status != 401:
            LOGGER.info(
                "%s answered 401 with a %s token and not without: keeping that",
                url,
                "Base64" if send_base64 else "raw",
            )
            return retry, not send_base64
    return response, send_base64


async def discover(
    client: PeerClient, versions_url: str, token: str, *, send_base64: bool = True, want: str | None = None
) -> PeerApi:
    """Fetch versions and version details with the partner's token; pick ``want`` or the highest mutual one.

    2.2.1 sends the token Base64-encoded, many 2.1.1 and 2.2 implementations expect it raw
    (transport_and_format, Authorization; 2.2.1-d2 advises trial and error): after a 401 the
    versions and the details GET are each tried once with the other encoding, and what worked is
    kept in ``send_base64``; a partner on 2.1.1 is first tried raw, as 2.1.1 specifies.
    """
    response, send_base64 = await _get_trying_encodings(client, versions_url, token, send_base64, "list")
    what = f"GET {versions_url}"
    raw_versions = unwrap_data(response, what)
    if not isinstance(raw_versions, list):
        raise UnableToUseClientApi(f"GET {versions_url}: data is not a list of versions")
    versions: list[Version] = []
    for item in raw_versions:
        try:
            versions.append(Version.model_validate(item))
        except ValidationError:
            LOGGER.warning("ignoring malformed version entry from %s: %r", versions_url, item)
    chosen = registration.choose([v.version for v in versions], want)
    match = next(v for v in versions if v.version == chosen)
    if chosen == "2.1.1":
        # 2.1.1 sends the token as it is (2.1.1 transport_and_format, Authorization); Base64 came
        # with 2.2. A versions endpoint shared by several versions may take both encodings, so
        # what it accepted says nothing about the 2.1.1 modules (seen with extrawest-ocpi).
        send_base64 = False
    answer, send_base64 = await _get_trying_encodings(client, match.url, token, send_base64, "object")
    raw_details = unwrap_data(answer, f"GET {match.url}")
    try:
        details = VersionDetails.model_validate(raw_details)
    except ValidationError as exc:
        raise UnableToUseClientApi(f"GET {match.url}: not a version details object") from exc
    listed = [
        Endpoint(module=ep.identifier.lower(), role=ep.role or InterfaceRole.SENDER, url=ep.url)
        for ep in details.endpoints
    ]
    endpoints = tuple(registration.endpoints(chosen, listed))
    for ep in endpoints:  # SSRF guard (routing/peers/ssrf.py): the hub will call every one of these
        try:
            client.check_url(ep.url)
        except OcpiError as exc:
            raise UnableToUseClientApi(f"GET {match.url}: endpoint {ep.module} {ep.role}: {exc.message}") from exc
    api = PeerApi(versions_url=versions_url, version=chosen, endpoints=endpoints, send_base64=send_base64)
    missing = [m for m in REQUIRED_MODULES if api.url(m) is None]
    if missing:
        raise NoMatchingEndpoints(f"partner publishes no {', '.join(missing)} endpoint")
    return api

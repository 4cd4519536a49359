"""Reading a partner's versions and version details (credentials.asciidoc, registration).

Any failure to use the partner's API is 3001, no version the hub speaks (2.1.1, 2.2.1, 2.3.0)
is 3002, and version details without a credentials endpoint are 3003 (OCPI-DIGEST 2.1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from routing.client import PeerClient, PeerResponse
from routing.errors import (
    NoMatchingEndpoints,
    OcpiError,
    UnableToUseClientApi,
)
from routing.models import Version, VersionDetails
from routing.versions import registration
from storage.models import Endpoint

LOGGER = logging.getLogger(__name__)

OCPI_VERSION = "2.2.1"
REQUIRED_MODULES = ("credentials",)


@dataclass(frozen=True)
class PeerApi:
    """What we learned of a partner: the version we use and its endpoints."""

    versions_url: str
    version: str
    endpoints: tuple[Endpoint, ...]

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


async def _get(client: PeerClient, url: str, token: str, send_base64: bool, what: str) -> Any:
    try:
        response = await client.send("GET", url, token=token, send_base64=send_base64)
    except OcpiError as exc:  # 4002/4003 from the client boundary: for a handshake that is 3001
        raise UnableToUseClientApi(f"{what}: {exc.message}") from exc
    return unwrap_data(response, what)


async def discover(
    client: PeerClient, versions_url: str, token: str, *, send_base64: bool = True, want: str | None = None
) -> PeerApi:
    """Fetch versions and version details with the partner's token; pick ``want`` or the highest mutual one."""
    raw_versions = await _get(client, versions_url, token, send_base64, f"GET {versions_url}")
    if isinstance(raw_versions, dict):  # sloppy peers send one object where a list belongs
        raw_versions = [raw_versions]
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
    raw_details = await _get(client, match.url, token, send_base64, f"GET {match.url}")
    if isinstance(raw_details, list) and len(raw_details) == 1:  # list-wrapped data
        raw_details = raw_details[0]
    try:
        details = VersionDetails.model_validate(raw_details)
    except ValidationError as exc:
        raise UnableToUseClientApi(f"GET {match.url}: not a version details object") from exc
    listed = [Endpoint(module=ep.identifier.lower(), role=ep.role or "SENDER", url=ep.url) for ep in details.endpoints]
    endpoints = tuple(registration.endpoints(chosen, listed))
    for ep in endpoints:  # SSRF guard (routing/ssrf.py): the hub will call every one of these
        try:
            client.check_url(ep.url)
        except OcpiError as exc:
            raise UnableToUseClientApi(f"GET {match.url}: endpoint {ep.module} {ep.role}: {exc.message}") from exc
    api = PeerApi(versions_url=versions_url, version=chosen, endpoints=endpoints)
    missing = [m for m in REQUIRED_MODULES if api.url(m) is None]
    if missing:
        raise NoMatchingEndpoints(f"partner publishes no {', '.join(missing)} endpoint")
    return api

"""Pydantic models of the objects the hub owns (versions, credentials, ClientInfo).

Routed payloads are never modelled: they are relayed as received so unknown and vendor fields
survive (docs/DESIGN-NOTES.md, Routing). Only what the hub itself must understand is validated here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from routing.protocol.vocab import InterfaceRole, Role

ConnectionStatus = Literal["CONNECTED", "OFFLINE", "PLANNED", "SUSPENDED"]


def _upper(value: Any) -> Any:
    # Sloppy peers send "emsp"; enums are upper case on the wire.
    return value.upper() if isinstance(value, str) else value


# A role as a partner may spell it: upper-cased before it is checked.
_UPPER = BeforeValidator(_upper)

# credentials.asciidoc: the token is string(64), printable non-whitespace ASCII.
_TOKEN_PATTERN = r"^[\x21-\x7e]{1,64}$"


class _Lenient(BaseModel):
    # Accept unknown fields from partners (2.3.0 makes this a SHALL; harmless for 2.2.1).
    model_config = ConfigDict(extra="ignore", frozen=True)


class BusinessDetails(_Lenient):
    """BusinessDetails (types.asciidoc): name required, website/logo optional."""

    name: str = Field(min_length=1, max_length=100)
    website: str | None = None
    logo: dict[str, Any] | None = None


class CredentialsRole(_Lenient):
    """One role a platform serves (credentials.asciidoc, CredentialsRole)."""

    role: Annotated[Role, _UPPER]
    business_details: BusinessDetails
    party_id: str = Field(pattern=r"^[A-Za-z0-9]{3}$")
    country_code: str = Field(pattern=r"^[A-Za-z]{2}$")


class Credentials(_Lenient):
    """The Credentials object (credentials.asciidoc): token, versions url, roles."""

    token: str = Field(pattern=_TOKEN_PATTERN)
    url: str = Field(min_length=1, max_length=255, pattern=r"^https?://")
    roles: list[CredentialsRole] = Field(min_length=1)


class Version(_Lenient):
    """One entry of a versions list."""

    version: str
    url: str = Field(pattern=r"^https?://")


class Endpoint(_Lenient):
    """One endpoint of a version details object."""

    identifier: str
    role: Annotated[InterfaceRole | None, _UPPER] = None
    url: str = Field(pattern=r"^https?://")


class VersionDetails(_Lenient):
    """A version details object: the version and its endpoints."""

    version: str
    endpoints: list[Endpoint] = Field(min_length=1)


class ClientInfo(BaseModel):
    """ClientInfo (mod_hub_client_info.asciidoc): one party's connection status."""

    model_config = ConfigDict(frozen=True)

    party_id: str
    country_code: str
    role: Role
    status: ConnectionStatus
    last_updated: str

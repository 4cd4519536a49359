"""What an interop peer is and holds: its identity (from the environment) and everything it saw.

Shared by the peer modules (see common.py for what is the library's and what is ours).
"""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi.encoders import jsonable_encoder
from py_ocpi.modules.credentials.v_2_1_1.schemas import Credentials as Credentials211
from py_ocpi.modules.credentials.v_2_2_1.schemas import Credentials

HOST = os.environ["OCPI_HOST"]
BASE = f"http://{HOST}"
ROLE = os.environ["PEER_ROLE"]  # CPO or EMSP
VERSION = os.environ.get("PEER_VERSION", "2.2.1")  # the one OCPI version this peer speaks
COUNTRY = os.environ["COUNTRY_CODE"]
PARTY = os.environ["PARTY_ID"]
NAME = os.environ.get("PEER_NAME", f"{ROLE} {PARTY}")
VERSIONS_URL = f"{BASE}/ocpi/versions"


class State:
    """Everything the peer saw and holds; dumped as JSON by /debug/state, emptied by /debug/reset."""

    requests: list[dict[str, Any]]  # inbound, in arrival order
    outbound: list[dict[str, Any]]  # every httpx exchange the process made (library or ours)
    writes: list[dict[str, Any]]  # CRUD writes the library made, in order
    objects: dict[str, dict[str, Any]]  # module -> id -> object (own data and received data)
    tokens_a: set[str]  # token A we accept for a hub-initiated registration
    tokens_c: set[str]  # tokens the hub (or the test, for /push) may call us with
    hub_token: str | None  # token we call the hub with
    hub_endpoints: list[dict[str, Any]]
    command_results: dict[str, Any]  # eMSP: CommandResults received, by uid
    commands: list[dict[str, Any]]  # CPO: commands the library handed to the "charge point"
    # Test switch (off by default): also accept the Base64 form of our tokens A and C. A 2.1.1
    # peer reads tokens as is; this lets a test get past a hub that sends them encoded.
    accept_base64: bool

    @classmethod
    def reset(cls) -> None:
        """A fresh peer: one process serves many tests, each with its own hub."""
        cls.requests, cls.outbound, cls.writes, cls.commands = [], [], [], []
        cls.objects, cls.command_results, cls.hub_endpoints = {}, {}, []
        cls.hub_token = None
        cls.accept_base64 = False
        cls.tokens_a = {os.environ["PEER_TOKEN_A"]} if os.environ.get("PEER_TOKEN_A") else set()
        # The operator token that authorizes the library's own /push/2.2.1 (HttpPushVerifier).
        cls.tokens_c = {os.environ["PEER_PUSH_TOKEN"]}


State.reset()


def jsonable(value: Any) -> Any:
    """Plain JSON types (the library's models hold Enums and str subclasses)."""
    return jsonable_encoder(value)


def our_credentials(token: str) -> dict[str, Any]:
    """The credentials object this peer hands to the hub, built with the library's model."""
    if VERSION == "2.1.1":  # 2.1.1 credentials.md: one flat party, no role
        business = {"name": NAME}
        return Credentials211(
            token=token, url=VERSIONS_URL, business_details=business, party_id=PARTY, country_code=COUNTRY
        ).dict()
    role = {
        "role": ROLE,
        "party_id": PARTY,
        "country_code": COUNTRY,
        "business_details": {"name": NAME},
    }
    return Credentials(token=token, url=VERSIONS_URL, roles=[role]).dict()


def key(value: Any) -> str:
    """Store key: ids are CiString (types.asciidoc), and the library lowercases them when it parses."""
    return str(value).lower()


def object_id(module: str, data: dict[str, Any]) -> str:
    """The id of a pushed object (Tokens are keyed by uid)."""
    return str(data.get("uid") if module == "tokens" else data.get("id"))


def parse(raw: bytes) -> Any:
    """A body as JSON when it is JSON, else as text; None when empty."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")

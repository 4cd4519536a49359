"""Each version's Credentials shape: 2.1.1 flat with an operator-named role, 2.3.0 hub_party_id."""

from __future__ import annotations

import json

import pytest

from routing.versions import CREDENTIALS, pick_version
from routing.versions.credentials_base import CoreCredentials, CredentialsShapeError, Party
from tests.support.versions import FIXTURES

HUB = CoreCredentials("tok", "https://hub/ocpi/versions", [Party("NL", "HUB", "HUB", {"name": "The Hub"})])


def test_211_needs_the_operator_role() -> None:
    """2.1.1 credentials carry no role: without the invitation's role they are refused."""
    body = {"token": "t", "url": "u", "party_id": "ABC", "country_code": "NL", "business_details": {"name": "A"}}
    with pytest.raises(CredentialsShapeError, match="no role"):
        CREDENTIALS["2.1.1"].parse(body)
    creds = CREDENTIALS["2.1.1"].parse(body, role="CPO")
    assert creds.parties == [Party("NL", "ABC", "CPO", {"name": "A"})]
    assert CREDENTIALS["2.1.1"].render(HUB) == {
        "token": "tok",
        "url": "https://hub/ocpi/versions",
        "business_details": {"name": "The Hub"},
        "party_id": "HUB",
        "country_code": "NL",
    }


@pytest.mark.parametrize("version", ["2.2.1", "2.3.0"])
def test_official_credentials_examples_parse(version: str) -> None:
    """Every official credentials example parses in its version."""
    for path in sorted((FIXTURES / f"ocpi-examples-{version}").glob("credentials_example*.json")):
        body = json.loads(path.read_text())
        if version == "2.3.0" and any(r["role"] == "HUB" for r in body["roles"]):
            with pytest.raises(CredentialsShapeError):
                CREDENTIALS[version].parse(body)
            continue
        creds = CREDENTIALS[version].parse(body)
        assert [p.as_role() for p in creds.parties] == body["roles"]


def test_230_hub_reports_hub_party_id_and_clients_as_roles() -> None:
    """2.3.0: no HUB role; hub_party_id names the hub, clients appear as normal roles."""
    client = Party("DE", "CPO", "CPO", {"name": "C"})
    body = CREDENTIALS["2.3.0"].render(HUB, [client])
    assert body["hub_party_id"] == "NLHUB"
    assert body["roles"] == [client.as_role()]
    alone = CREDENTIALS["2.3.0"].render(HUB, [])
    assert [r["role"] for r in alone["roles"]] == ["OTHER"]
    assert CREDENTIALS["2.2.1"].render(HUB)["roles"][0]["role"] == "HUB"


def test_highest_mutual_version() -> None:
    """The hub picks the highest version both sides list."""
    assert pick_version(["2.1.1", "2.2.1"]) == "2.2.1"
    assert pick_version(["2.3.0", "2.1.1"]) == "2.3.0"
    assert pick_version(["2.0"]) is None

"""Every official example and generated objects survive 2.2.1 -> X -> 2.2.1 (X = 2.1.1, 2.3.0).

What comes back differs from what went out only where the loss report says so, and every
field reported dropped really is gone: the report names exactly what the middle version lost.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import routing.versions as versions
from routing.versions import Context, Untranslatable
from routing.versions.v221 import models as m221
from routing.versions.v230 import models as m230
from tests.support.versions import changed_paths, covered, examples, objects

MIDDLE = ["2.1.1", "2.3.0"]


def _ctx(data: dict[str, Any]) -> Context:
    return Context(str(data.get("country_code", "NL")), str(data.get("party_id", "TNM")))


def roundtrip(middle: str, kind: str, data: dict[str, Any], partial: bool) -> None:
    """2.2.1 -> middle -> 2.2.1 and check the loss report against the difference."""
    ctx = _ctx(data)
    out = versions.from_core(middle, kind, data, ctx, partial)
    back = versions.to_core(middle, kind, out.data, ctx, partial)
    losses = out.losses + back.losses
    named = {loss.path for loss in losses}
    changed = changed_paths(data, back.data)
    unexplained = {p for p in changed if not covered(p, named)}
    assert not unexplained, (middle, kind, unexplained, losses)
    # A dropped field may come back rebuilt on the way in (the owner from the Context, a token
    # guessed from its contract id): those are named by the way-in losses, not lost silently.
    refilled = {loss.path for loss in back.losses}
    dropped = {
        loss.path
        for loss in out.losses
        if loss.kind == "dropped"
        and not covered(loss.path, refilled)
        and loss.path.rsplit(".", 1)[-1] not in ("country_code", "party_id")
    }
    still_there = {p for p in dropped if not any(covered(c, {p}) for c in changed)}
    assert not still_there, (middle, kind, still_there)


CASES_221 = [(m, e) for m in MIDDLE for e in examples("2.2.1")]


@pytest.mark.parametrize(("middle", "example"), CASES_221, ids=lambda x: str(x)[:40])
def test_221_examples_roundtrip(middle: str, example: tuple[str, str, bool, Any]) -> None:
    """2.2.1 official examples through 2.1.1 and 2.3.0."""
    _, kind, partial, data = example
    roundtrip(middle, kind, data, partial)


@pytest.mark.parametrize("example", examples("2.3.0"), ids=lambda e: e[0])
def test_230_examples_roundtrip(example: tuple[str, str, bool, Any]) -> None:
    """2.3.0 official examples: 2.3.0 -> 2.2.1 -> 2.3.0 changes only what the report names."""
    _, kind, partial, data = example
    ctx = _ctx(data)
    core = versions.to_core("2.3.0", kind, data, ctx, partial)
    back = versions.from_core("2.3.0", kind, core.data, ctx, partial)
    named = {loss.path for loss in core.losses + back.losses}
    changed = changed_paths(data, back.data)
    # The 2.3.0 CDR example's tariff lacks the required tax_included; the way out adds "NO".
    changed.discard("tariffs[].tax_included")
    assert {p for p in changed if not covered(p, named)} == set(), core.losses


@pytest.mark.parametrize("example", examples("2.1.1"), ids=lambda e: e[0])
def test_211_examples_reach_core_and_back(example: tuple[str, str, bool, Any]) -> None:
    """2.1.1 spec examples: 2.1.1 -> 2.2.1 -> 2.1.1 changes only what the report names."""
    _, kind, partial, data = example
    ctx = Context("NL", "TNM")
    core = versions.to_core("2.1.1", kind, data, ctx, partial)
    back = versions.from_core("2.1.1", kind, core.data, ctx, partial)
    named = {loss.path for loss in core.losses + back.losses}
    changed = changed_paths(data, back.data)
    assert {p for p in changed if not covered(p, named)} == set(), (changed, core.losses)


def test_230_extension_field_is_reported_when_translated() -> None:
    """An unknown 2.3.0 field cannot reach 2.2.1: dropped with a record naming it."""
    tok = examples("2.3.0")[-1][3] | {"x_vendor_extra": 1}
    out = versions.to_core("2.3.0", "Token", tok, _ctx(tok))
    assert "x_vendor_extra" not in out.data
    assert [(x.path, x.kind) for x in out.losses] == [("x_vendor_extra", "dropped")]
    assert not versions.needs_translation("2.3.0", "2.3.0")


def test_211_cdr_from_221_example_maps_token_location_and_price() -> None:
    """cdr_token -> auth_id, cdr_location -> location, Price -> excl. VAT number, end -> stop."""
    cdr = next(e[3] for e in examples("2.2.1") if e[0] == "cdr_example.json")
    out = versions.from_core("2.1.1", "CDR", cdr, _ctx(cdr))
    assert out.data["auth_id"] == cdr["cdr_token"]["contract_id"]
    assert out.data["stop_date_time"] == cdr["end_date_time"]
    assert out.data["total_cost"] == cdr["total_cost"]["excl_vat"]
    assert out.data["location"]["evses"][0]["uid"] == cdr["cdr_location"]["evse_uid"]
    kinds = {(x.path, x.kind) for x in out.losses}
    assert ("total_cost.incl_vat", "dropped") in kinds
    assert ("total_time_cost", "dropped") in kinds


def test_charging_profiles_and_cancel_reservation_cannot_reach_211() -> None:
    """No charging profiles, no CANCEL_RESERVATION in 2.1.1: an error, not a silent drop."""
    with pytest.raises(Untranslatable):
        versions.from_core("2.1.1", "SetChargingProfile", {"charging_profile": {}})
    with pytest.raises(Untranslatable):
        versions.from_core("2.1.1", "CancelReservation", {"reservation_id": "1"})


def test_command_result_to_211_is_approximated() -> None:
    """EVSE_OCCUPIED has no 2.1.1 value: REJECTED, recorded."""
    out = versions.from_core("2.1.1", "CommandResult", {"result": "EVSE_OCCUPIED"})
    assert out.data == {"result": "REJECTED"}
    assert [x.kind for x in out.losses] == ["approximated"]
    back = versions.to_core("2.1.1", "CommandResponse", {"result": "ACCEPTED"})
    assert back.data["timeout"] > 0


KINDS = ["Location", "EVSE", "Connector", "Tariff", "Token", "Session", "CDR"]
KINDS += ["CommandResponse", "CommandResult", "StartSession", "StopSession", "UnlockConnector"]


# No shrinking: a failing draw is printed as drawn (shrinking nested objects is slow).
_FAST = [Phase.explicit, Phase.reuse, Phase.generate]


@settings(max_examples=40, deadline=None, phases=_FAST, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), middle=st.sampled_from(MIDDLE), kind=st.sampled_from(KINDS))
def test_generated_221_objects_roundtrip(data: st.DataObject, middle: str, kind: str) -> None:
    """Hypothesis objects built from the 2.2.1 field tables round-trip like the examples."""
    obj = data.draw(objects(getattr(m221, kind)))
    roundtrip(middle, kind, obj, partial=False)


@settings(max_examples=30, deadline=None, phases=_FAST, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), kind=st.sampled_from(["Location", "Tariff", "Token", "Session", "CDR"]))
def test_generated_230_objects_fit_221(data: st.DataObject, kind: str) -> None:
    """Every 2.3.0 object translates to a valid 2.2.1 object."""
    obj = data.draw(objects(getattr(m230, kind)))
    out = versions.to_core("2.3.0", kind, obj, _ctx(obj))
    getattr(m221, kind).model_validate(out.data)

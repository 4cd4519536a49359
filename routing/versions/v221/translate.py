"""OCPI 2.2.1 is the hub's core dialect: nothing to translate."""

from __future__ import annotations

from routing.versions.loss import Context, JsonObj, Losses

VERSION = "2.2.1"


def to_core(kind: str, data: JsonObj, ctx: Context, losses: Losses, partial: bool = False) -> JsonObj:
    """2.2.1 in, 2.2.1 out: the object itself."""
    del kind, ctx, losses, partial
    return data


def from_core(kind: str, data: JsonObj, ctx: Context, losses: Losses, partial: bool = False) -> JsonObj:
    """2.2.1 out: the object itself."""
    del kind, ctx, losses, partial
    return data

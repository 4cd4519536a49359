"""SQL for roaming agreements (migration 0015_agreements).

An agreement relates two parties, each (country_code, party_id, role), for some modules ('*' is
every module), in a state (active, suspended) and an optional validity window. Identities are
kept upper case and the pair in one order (``a`` sorts before ``b``), so one pair of parties has
one row (the unique index agreements_pair). What an agreement allows is decided in
routing/agreements/book.py; this module only reads and writes rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Row, Store, SyncTx
from storage.errors import Conflict, IntegrityError, RecordNotFound

ALL_MODULES = "*"

_COLS = (
    "id, a_country_code, a_party_id, a_role, b_country_code, b_party_id, b_role, modules, state,"
    " valid_from, valid_to, reference, created_at, updated_at"
)

Side = tuple[str, str, str]  # (country_code, party_id, role), upper case


@dataclass(frozen=True)
class AgreementRow:
    """One stored agreement."""

    id: int
    a: Side
    b: Side
    modules: str  # '*' or comma-separated module names
    state: str
    valid_from: str | None
    valid_to: str | None
    reference: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class AgreementValues:
    """What an operator sets on an agreement (the two sides in any order: ``ordered`` sorts them)."""

    a: Side
    b: Side
    modules: str = ALL_MODULES
    state: str = "active"
    valid_from: str | None = None
    valid_to: str | None = None
    reference: str | None = None

    def ordered(self) -> AgreementValues:
        """The same agreement with its sides upper case and in storage order."""
        a = (self.a[0].upper(), self.a[1].upper(), self.a[2].upper())
        b = (self.b[0].upper(), self.b[1].upper(), self.b[2].upper())
        first, second = sorted((a, b))
        return AgreementValues(first, second, self.modules, self.state, self.valid_from, self.valid_to, self.reference)


def _row(r: Row) -> AgreementRow:
    return AgreementRow(
        id=int(r["id"]),
        a=(r["a_country_code"], r["a_party_id"], r["a_role"]),
        b=(r["b_country_code"], r["b_party_id"], r["b_role"]),
        modules=r["modules"],
        state=r["state"],
        valid_from=r["valid_from"],
        valid_to=r["valid_to"],
        reference=r["reference"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


async def list_agreements(store: Store) -> list[AgreementRow]:
    """Every agreement, oldest first."""
    return [_row(r) for r in await store.fetchall(f"SELECT {_COLS} FROM agreements ORDER BY id")]


async def get_agreement(store: Store, agreement_id: int) -> AgreementRow:
    """One agreement (RecordNotFound when there is none with this id)."""
    row = await store.fetchone(f"SELECT {_COLS} FROM agreements WHERE id=?", (agreement_id,))
    if row is None:
        raise RecordNotFound(f"agreement {agreement_id}")
    return _row(row)


def _pair_id(tx: SyncTx, v: AgreementValues) -> int | None:
    row = tx.fetchone(
        "SELECT id FROM agreements WHERE a_country_code=? AND a_party_id=? AND a_role=?"
        " AND b_country_code=? AND b_party_id=? AND b_role=?",
        (*v.a, *v.b),
    )
    return int(row["id"]) if row else None


def _describe(v: AgreementValues) -> str:
    return f"{v.a[0]}*{v.a[1]} ({v.a[2]}) and {v.b[0]}*{v.b[1]} ({v.b[2]})"


def insert(tx: SyncTx, values: AgreementValues, *, now: str) -> int:
    """Add an agreement inside a write job; Conflict when the pair has one already."""
    v = values.ordered()
    if _pair_id(tx, v) is not None:
        raise Conflict(f"an agreement between {_describe(v)} exists already")
    try:
        return tx.insert(
            "INSERT INTO agreements (a_country_code, a_party_id, a_role, b_country_code, b_party_id, b_role,"
            " modules, state, valid_from, valid_to, reference, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*v.a, *v.b, v.modules, v.state, v.valid_from, v.valid_to, v.reference, now, now),
        )
    except IntegrityError as exc:  # the same pair added by another process meanwhile
        raise Conflict(f"an agreement between {_describe(v)} exists already") from exc


def insert_many(tx: SyncTx, rows: Sequence[AgreementValues], *, now: str) -> list[int]:
    """Add several agreements in one job: all of them or (on the first Conflict) none."""
    return [insert(tx, v, now=now) for v in rows]


def update(tx: SyncTx, agreement_id: int, values: AgreementValues, *, now: str) -> None:
    """Replace an agreement's fields; RecordNotFound when it is gone, Conflict when its pair is another's."""
    v = values.ordered()
    other = _pair_id(tx, v)
    if other is not None and other != agreement_id:
        raise Conflict(f"an agreement between {_describe(v)} exists already (id {other})")
    changed = tx.execute_rowcount(
        "UPDATE agreements SET a_country_code=?, a_party_id=?, a_role=?, b_country_code=?, b_party_id=?,"
        " b_role=?, modules=?, state=?, valid_from=?, valid_to=?, reference=?, updated_at=? WHERE id=?",
        (*v.a, *v.b, v.modules, v.state, v.valid_from, v.valid_to, v.reference, now, agreement_id),
    )
    if not changed:
        raise RecordNotFound(f"agreement {agreement_id}")


def delete(tx: SyncTx, agreement_id: int) -> None:
    """Remove an agreement; RecordNotFound when there is none with this id."""
    if not tx.execute_rowcount("DELETE FROM agreements WHERE id=?", (agreement_id,)):
        raise RecordNotFound(f"agreement {agreement_id}")

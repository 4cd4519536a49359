"""SQL for roaming agreements (migration 0015_agreements).

An agreement relates two parties, each (country_code, party_id, role), for some modules ('*' is
every module), in a state (active, suspended) and an optional validity window. Identities are
kept upper case and the pair in one order (``a`` sorts before ``b``), so one pair of parties has
one row (the unique index agreements_pair). What an agreement allows is decided in
routing/agreements/book.py; this module only reads and writes rows. ``announced`` (0024): whether
the partners were last told (HubClientInfo) that the agreement is in force; NULL on older rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Row, Store, SyncTx
from storage.errors import Conflict, IntegrityError, RecordNotFound

ALL_MODULES = "*"

_COLS = (
    "id, a_country_code, a_party_id, a_role, b_country_code, b_party_id, b_role, modules, state,"
    " valid_from, valid_to, reference, created_at, updated_at, announced"
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
    announced: bool | None = None  # told in force (True), not (False), unknown (None: before 0024)


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
        announced=None if r["announced"] is None else bool(r["announced"]),
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


def read(tx: SyncTx, agreement_id: int) -> AgreementRow | None:
    """One agreement inside a write job (the state a change starts from), locked until the commit; None when gone.

    Locked on a shared database (PostgreSQL) so that ``announced`` cannot flip in another
    process between this read and the change's write; SQLite's writer is alone anyway.
    """
    lock = " FOR UPDATE" if tx.owner is not None else ""
    row = tx.fetchone(f"SELECT {_COLS} FROM agreements WHERE id=?{lock}", (agreement_id,))
    return _row(row) if row is not None else None


def _pair_id(tx: SyncTx, v: AgreementValues) -> int | None:
    row = tx.fetchone(
        "SELECT id FROM agreements WHERE a_country_code=? AND a_party_id=? AND a_role=?"
        " AND b_country_code=? AND b_party_id=? AND b_role=?",
        (*v.a, *v.b),
    )
    return int(row["id"]) if row else None


def _describe(v: AgreementValues) -> str:
    return f"{v.a[0]}*{v.a[1]} ({v.a[2]}) and {v.b[0]}*{v.b[1]} ({v.b[2]})"


def insert(tx: SyncTx, values: AgreementValues, *, now: str, announced: bool = False) -> int:
    """Add an agreement inside a write job (``announced``: told in force); Conflict when the pair has one already."""
    v = values.ordered()
    if _pair_id(tx, v) is not None:
        raise Conflict(f"an agreement between {_describe(v)} exists already")
    try:
        return tx.insert(
            "INSERT INTO agreements (a_country_code, a_party_id, a_role, b_country_code, b_party_id, b_role,"
            " modules, state, valid_from, valid_to, reference, created_at, updated_at, announced)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*v.a, *v.b, v.modules, v.state, v.valid_from, v.valid_to, v.reference, now, now, int(announced)),
        )
    except IntegrityError as exc:  # the same pair added by another process meanwhile
        raise Conflict(f"an agreement between {_describe(v)} exists already") from exc


def insert_many(
    tx: SyncTx, rows: Sequence[AgreementValues], *, now: str, announced: Sequence[bool] | None = None
) -> list[int]:
    """Add several agreements in one job: all of them or (on the first Conflict) none."""
    told = announced if announced is not None else [False] * len(rows)
    return [insert(tx, v, now=now, announced=a) for v, a in zip(rows, told, strict=True)]


def update(tx: SyncTx, agreement_id: int, values: AgreementValues, *, now: str, announced: bool = False) -> None:
    """Replace an agreement's fields and ``announced``; RecordNotFound if gone, Conflict if the pair is taken."""
    v = values.ordered()
    other = _pair_id(tx, v)
    if other is not None and other != agreement_id:
        raise Conflict(f"an agreement between {_describe(v)} exists already (id {other})")
    changed = tx.execute_rowcount(
        "UPDATE agreements SET a_country_code=?, a_party_id=?, a_role=?, b_country_code=?, b_party_id=?,"
        " b_role=?, modules=?, state=?, valid_from=?, valid_to=?, reference=?, updated_at=?, announced=? WHERE id=?",
        (*v.a, *v.b, v.modules, v.state, v.valid_from, v.valid_to, v.reference, now, int(announced), agreement_id),
    )
    if not changed:
        raise RecordNotFound(f"agreement {agreement_id}")


def delete(tx: SyncTx, agreement_id: int) -> None:
    """Remove an agreement; RecordNotFound when there is none with this id."""
    if not tx.execute_rowcount("DELETE FROM agreements WHERE id=?", (agreement_id,)):
        raise RecordNotFound(f"agreement {agreement_id}")


def announce(tx: SyncTx, agreement_id: int, *, told: bool | None, now_told: bool) -> bool:
    """Flip ``announced`` from ``told`` to ``now_told`` inside the job committing its due row.

    Only if it is still ``told`` (another process may have announced it meanwhile): False then.
    """
    was = -1 if told is None else int(told)
    return (
        tx.execute_rowcount(
            "UPDATE agreements SET announced=? WHERE id=? AND COALESCE(announced, -1)=?",
            (int(now_told), agreement_id, was),
        )
        == 1
    )

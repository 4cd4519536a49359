"""SQL for hub URLs that stand in for a partner's own: response_url callbacks, Link pages, CDR Locations."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from storage.db import Store, SyncTx, Transaction


class Proxy(BaseModel):
    """One hub URL's mapping to the partner URL it replaces."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    module: str
    target_url: str
    target_platform_id: int
    allowed_platform_id: int
    from_country_code: str | None = None
    from_party_id: str | None = None
    to_country_code: str | None = None
    to_party_id: str | None = None
    correlation_id: str | None = None
    created_at: str
    expires_at: str


def create_proxy(tx: SyncTx, proxy: Proxy) -> None:
    """Store a new mapping."""
    data = proxy.model_dump()
    cols = ", ".join(data)
    marks = ", ".join("?" * len(data))
    tx.execute(f"INSERT INTO proxies ({cols}) VALUES ({marks})", list(data.values()))


async def get_proxy(store: Store | Transaction, proxy_id: str) -> Proxy | None:
    """The mapping for a hub URL id, if any (expired ones included: the caller decides)."""
    row = await store.fetchone("SELECT * FROM proxies WHERE id=?", (proxy_id,))
    return Proxy(**dict(row)) if row else None


def set_expiry(tx: SyncTx, proxy_id: str, expires_at: str) -> None:
    """Move a mapping's expiry (commands: the CommandResponse timeout decides it)."""
    tx.execute("UPDATE proxies SET expires_at=? WHERE id=?", (expires_at, proxy_id))


def purge_expired(tx: SyncTx, now: str) -> int:
    """Delete mappings past their expiry; return how many."""
    return tx.execute_rowcount("DELETE FROM proxies WHERE expires_at<?", (now,))

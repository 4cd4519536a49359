"""The console's audit page: every change made through the console or the admin API, newest first.

Read by every operator (read-only ones too: knowing who changed what is not a change). The
entries come from storage/operators.py, the same rows `ocpi-hub audit` and GET /admin/audit show.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from hub.admin.accounts import audit_json
from hub.admin.params import positive_int
from hub.console.core import ROOT, render
from hub.keys import STORE
from storage import operators as operator_sql

PAGE = 100


async def audit_page(request: web.Request) -> web.Response:
    """GET /console/audit[?actor=&before=]: one page of the audit log."""
    actor = request.query.get("actor", "")[:64] or None
    before = positive_int(request.query.get("before", "")) if request.query.get("before") else None
    rows = await operator_sql.audit_entries(request.app[ROOT][STORE], actor=actor, before=before, limit=PAGE + 1)
    entries: list[dict[str, Any]] = [audit_json(e) for e in rows[:PAGE]]
    older = None
    if len(rows) > PAGE:
        older = urlencode({**({"actor": actor} if actor else {}), "before": str(entries[-1]["id"])})
    context = {"entries": entries, "actor_filter": actor or "", "older": older, "paged": before is not None}
    return render(request, "audit.html", context)

"""Following a GET-all crawl the way a partner does: ``Link rel=next`` from a first URL to the end.

What each page held and carried (X-Total-Count, X-Limit, the offset its Link names, its size),
for the pagination tests (tests/test_getall_bridged.py, tests/test_getall_budget.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fakes import FakePlatform
from tests.support.hub import HubHandle

LINK = re.compile(r'^<([^>]+)>; rel="next"$')


@dataclass
class Crawl:
    """What a reader saw following Link from a first URL: the pages, their headers, the Link offsets."""

    pages: list[list[dict[str, Any]]] = field(default_factory=list)
    totals: list[int] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)  # the offset each page's Link carries
    sizes: list[int] = field(default_factory=list)  # each answer's bytes (its JSON)

    @property
    def items(self) -> list[dict[str, Any]]:
        """Every item collected, in order."""
        return [item for page in self.pages for item in page]


async def crawl(hub: HubHandle, peer: FakePlatform, path: str, headers: dict[str, str] | None = None) -> Crawl:
    """Follow Link rel=next from ``path`` to the end (bounded: a Link loop fails the test)."""
    seen = Crawl()
    url: str | None = path
    for _ in range(50):
        assert url is not None
        status, body, answer = await hub.call("GET", url, token=peer.hub_token, headers=headers)
        assert (status, body["status_code"]) == (200, 1000), body
        seen.pages.append(body["data"])
        seen.totals.append(int(answer["X-Total-Count"]))
        seen.limits.append(answer["X-Limit"])
        seen.sizes.append(len(json.dumps(body).encode()))
        link = answer.get("Link")
        if link is None:
            return seen
        match = LINK.match(link)
        assert match is not None, link
        url = match.group(1)
        assert url.startswith(f"{hub.base}{path.split('?')[0]}"), url  # on the reader's own version
        seen.offsets.append(int(parse_qs(urlsplit(url).query)["offset"][0]))
    raise AssertionError("Link rel=next never ended")

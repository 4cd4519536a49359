"""Cheap unique ids in UUID form for X-Request-ID / X-Correlation-ID (transport_and_format 4.1.1).

``uuid4()`` costs an ``os.urandom`` call and a UUID object per id, twice or more per push. A
random 64-bit prefix drawn once per process plus a 64-bit counter is as unique for our purpose
(a receiver de-duplicates redeliveries by X-Request-ID; ids must never repeat across restarts,
which the random prefix ensures) and is formatted like a UUID, as the spec advises.
"""

from __future__ import annotations

import itertools
import secrets

_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count(secrets.randbelow(2**32))


def new_id() -> str:
    """A fresh id, ``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``: process prefix + counter."""
    tail = f"{next(_COUNTER) & 0xFFFFFFFFFFFFFFFF:016x}"
    return f"{_PREFIX[:8]}-{_PREFIX[8:12]}-{_PREFIX[12:16]}-{tail[:4]}-{tail[4:]}"

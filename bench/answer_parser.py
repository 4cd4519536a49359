"""``python -m bench.answer_parser``: what the one parser for partner answers costs (issue 20).

Every partner answer goes through ``routing.peers.foreign.read_envelope``, which refuses deep
nesting, NaN, overflowing numbers, duplicate keys and lone surrogates. This compares it with
the plain ``json.loads`` the client used before, on answers the hub really reads: a push
answer, version details, and pages of 10, 100 and 1,000 official Location examples. The
end-to-end scenarios (``python -m bench``) are too noisy on a shared 2-core machine to resolve
a few microseconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from routing.peers.foreign import read_envelope

EXAMPLE = Path(__file__).resolve().parent.parent / "tests/fixtures/ocpi-examples-2.2.1/location_example.json"


def _answers() -> dict[str, bytes]:
    location = json.loads(EXAMPLE.read_text())
    details = {
        "version": "2.2.1",
        "endpoints": [
            {"identifier": m, "role": r, "url": f"https://cpo.example.com/ocpi/2.2.1/{m}/{r.lower()}"}
            for m in ("credentials", "locations", "sessions", "cdrs", "tariffs", "tokens", "commands")
            for r in ("SENDER", "RECEIVER")
        ],
    }

    def env(data: Any) -> bytes:
        return json.dumps({"status_code": 1000, "status_message": "Success", "data": data, "timestamp": "t"}).encode()

    return {
        "push answer": b'{"status_code":1000,"timestamp":"2026-11-25T12:00:00Z"}',
        "version details": env(details),
        "page of 10 locations": env([location] * 10),
        "page of 100 locations": env([location] * 100),
        "page of 1000 locations": env([location] * 1000),
    }


def _per_call(fn: Callable[[bytes], Any], body: bytes, budget: float = 0.5) -> float:
    """Seconds per call, best of five runs of about ``budget / 5`` seconds each."""
    n, best = 1, float("inf")
    start = time.perf_counter()
    fn(body)
    one = max(time.perf_counter() - start, 1e-7)
    n = max(1, int(budget / 5 / one))
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn(body)
        best = min(best, (time.perf_counter() - start) / n)
    return best


def main() -> None:
    """Print the cost of the one parser next to plain json.loads."""
    print(f"{'answer':<24} {'bytes':>10} {'json.loads':>12} {'read_envelope':>14} {'ratio':>6}")
    for name, body in _answers().items():
        plain = _per_call(json.loads, body)
        guarded = _per_call(read_envelope, body)
        print(f"{name:<24} {len(body):>10} {plain * 1e6:>10.1f}us {guarded * 1e6:>12.1f}us {guarded / plain:>6.2f}")


if __name__ == "__main__":
    main()

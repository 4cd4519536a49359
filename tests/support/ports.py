"""Free TCP ports for test servers, chosen outside the kernel's ephemeral range.

`aiohttp.test_utils.free_port()` asks the kernel for a port in the ephemeral range
(32768-60999 on Linux) and closes it again: until the test server binds it, any outgoing
connection of the suite may take that very number as its source port, and the bind fails
with EADDRINUSE (seen in CI under load). Ports below the range are never handed out as
source ports, so a port picked there and found free stays free for the test.
"""

from __future__ import annotations

import random
import socket

LOW, HIGH = 20_000, 32_000  # below /proc/sys/net/ipv4/ip_local_port_range's default start
_rng = random.Random()


def free_port(host: str = "127.0.0.1") -> int:
    """A port on ``host`` that nothing listens on or holds, outside the ephemeral range."""
    for _ in range(200):
        port = _rng.randrange(LOW, HIGH)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))  # no SO_REUSEADDR: a TIME_WAIT leftover counts as taken
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {LOW}-{HIGH} after 200 tries")

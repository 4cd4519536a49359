"""Shared test helpers; fixtures stay in tests/conftest.py (pytest finds them there), which imports these.

hub.py       HubHandle (the running hub as partners and operators call it), ADMIN, the CLI in-process
backends.py  HUB_TEST_POSTGRES_URL (read only here), PostgreSQL schemas, fresh databases per backend
waiting.py   wait_for / until (bounded polls), settle / advance_until (the worker under the fake clock)
fakes.py     FakePlatform: a partner as a real aiohttp server on 127.0.0.1; fault_peer.py: one that misbehaves
processes.py the hub as a real process (`python -m hub serve`); live_hub.py: in a thread, for sync clients
ports.py     free ports outside the ephemeral range
routing.py, delivery.py, commands.py, agreements.py, bridge.py, versions.py, ops.py, console.py:
             parties, sample objects and steps of one area's tests
"""

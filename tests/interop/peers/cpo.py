"""Interop CPO: extrawest-ocpi's CPO application (run by tests/interop with the interop venv's python).

Serves the library's CPO modules (credentials, locations, sessions, CDRs, tariffs as SENDER;
tokens, commands, hubclientinfo as RECEIVER), pushes its own data through the library's
``POST /push/2.2.1`` facility and answers commands the way the library does (see common.py).
"""

from __future__ import annotations

import os

import uvicorn
from common import build_app, exit_with_parent
from py_ocpi.core.enums import ModuleID

MODULES = [
    ModuleID.credentials_and_registration,
    ModuleID.locations,
    ModuleID.sessions,
    ModuleID.cdrs,
    ModuleID.tariffs,
    ModuleID.tokens,
    ModuleID.commands,
    ModuleID.hub_client_info,
]

if __name__ == "__main__":
    exit_with_parent()
    uvicorn.run(build_app(MODULES), host="127.0.0.1", port=int(os.environ["PEER_PORT"]), log_level="warning")

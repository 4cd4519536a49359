"""Interop eMSP: extrawest-ocpi's eMSP application (run by tests/interop with the interop venv's python).

Serves the library's eMSP modules (credentials, locations, sessions, CDRs, tariffs,
hubclientinfo as RECEIVER; tokens and commands as SENDER), pushes its tokens through the
library's ``POST /push/2.2.1`` and sends commands with common.py's ``/debug/send``.
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

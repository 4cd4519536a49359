"""Interop 2.1.1 CPO: extrawest-ocpi's own OCPI 2.1.1 CPO application (py_ocpi/modules/*/v_2_1_1).

Run by tests/interop with the interop venv's python and ``PEER_VERSION=2.1.1`` (conftest.py):
common.py builds the library's app with ``version_numbers=[2.1.1]``, so it publishes only 2.1.1
(versions, details with one URL per module and no interface role), reads and sends tokens as is
(no base64), and pushes through the library's ``POST /push/2.1.1``. The library's 2.1.1 CPO has
no commands module in its version details; the flows here do not need it.
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
]

if __name__ == "__main__":
    assert os.environ.get("PEER_VERSION") == "2.1.1", "cpo211.py is the 2.1.1 CPO: run it with PEER_VERSION=2.1.1"
    exit_with_parent()
    uvicorn.run(build_app(MODULES), host="127.0.0.1", port=int(os.environ["PEER_PORT"]), log_level="warning")

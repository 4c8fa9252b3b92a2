"""What several test folders share without being a conftest of their own.

- ``local_stack``: the e2e fixture of ``tests/e2e/conftest.py``. Other folders' ``conftest`` modules re-export
  it (``local_stack = shared_fixtures.local_stack``); the module is loaded once, under its own name, so that
  the folders' ``conftest`` modules can coexist and all of them share the one session-scoped stack.
- Debian's headless Chromium: where it is, how it is launched here, and why a test cannot run without it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
_E2E_MODULE = "cartrecovery_e2e_fixtures"


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when Chromium is installed."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return None
    return f"{CHROMIUM} is missing: install Debian's chromium (`make chromium`) to run the browser tests"


def _e2e_fixtures() -> ModuleType:
    if _E2E_MODULE in sys.modules:
        return sys.modules[_E2E_MODULE]
    path = Path(__file__).resolve().parent / "e2e" / "conftest.py"
    spec = importlib.util.spec_from_file_location(_E2E_MODULE, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[_E2E_MODULE] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


local_stack: Any = _e2e_fixtures().local_stack

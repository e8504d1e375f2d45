"""Makes ``fake_dfu_device`` (test scaffolding beside this file) importable by name.

pytest runs in importlib mode, which puts no test folder on sys.path; the module is loaded once from
its file and registered under its plain name before the test modules of this folder import it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "fake_dfu_device"

if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name(f"{_NAME}.py"))
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module  # registered first: its dataclasses look their module up while it runs
    _spec.loader.exec_module(_module)

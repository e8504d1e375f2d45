"""Is Renode usable here? One line saying what is missing and how to install it."""

from __future__ import annotations

import importlib.util
import os

INSTALL_HINT = (
    "install Renode 1.16.1+ (https://renode.io, portable or package build), then "
    "`pip install pythonnet 'pyrenode3 @ git+https://github.com/antmicro/pyrenode3'` and point "
    "pyrenode3 at it with exactly one of PYRENODE_PKG / PYRENODE_BUILD_DIR / PYRENODE_BIN"
)
BUILD_VARIABLES = ("PYRENODE_PKG", "PYRENODE_BUILD_DIR", "PYRENODE_BIN")


def missing_reason() -> str | None:
    """None when pyrenode3 and a Renode build are available, else why not (one line)."""
    if importlib.util.find_spec("pythonnet") is None:
        return f"Renode host unavailable: the pythonnet package is not installed; {INSTALL_HINT}"
    if importlib.util.find_spec("pyrenode3") is None:
        return f"Renode host unavailable: the pyrenode3 package is not installed; {INSTALL_HINT}"
    chosen = [v for v in BUILD_VARIABLES if os.environ.get(v)]
    if len(chosen) != 1:
        what = "none of" if not chosen else "more than one of"
        return f"Renode host unavailable: {what} {', '.join(BUILD_VARIABLES)} is set; {INSTALL_HINT}"
    path = os.environ[chosen[0]]
    if not os.path.exists(path):
        return f"Renode host unavailable: {chosen[0]}={path} does not exist; {INSTALL_HINT}"
    return None

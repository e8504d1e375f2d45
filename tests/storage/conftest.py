"""Set-up of the storage integration tests: the firmware build, and the shared helpers.

These tests run the real firmware (storage_test, storage_bench, the DfuSe bootloader, the sample
applications) on the virtual board and check what ends up in the flash images, byte for byte.
pytest runs in importlib mode (no test folder on sys.path), so ``storage_helpers`` beside this
file is registered under its plain name here, before the test modules import it.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_NAME = "storage_helpers"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name(f"{_NAME}.py"))
    assert _spec is not None and _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)

from storage_helpers import BUILD_DIR, FIRMWARE_DIR  # noqa: E402


@pytest.fixture(scope="module")
def firmware() -> Path:
    """firmware/build after `make -C firmware` (skips when the Arm toolchain is missing)."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip(
            "arm-none-eabi-gcc not found on PATH: cannot build firmware/ (apt-get install gcc-arm-none-eabi)"
        )
    proc = subprocess.run(["make", "-C", str(FIRMWARE_DIR)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            f"make -C firmware failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return BUILD_DIR

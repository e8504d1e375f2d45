"""The H743Board Robot library: complete keyword documentation, and ENGINE=renode without Renode.

No board suite runs here (scripts/test runs them); these tests load the library the way Robot does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from robot.api import ExecutionResult, SkipExecution
from robot.libdocpkg import LibraryDocumentation
from robot.utils import Importer

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "robot" / "H743Board.py"
RENODE_VARIABLES = ("PYRENODE_PKG", "PYRENODE_BUILD_DIR", "PYRENODE_BIN")
# Keywords whose names follow Renode's, as the suites and users rely on them.
RENODE_NAMES = {
    "Reset Emulation",
    "Start Emulation",
    "Create Terminal Tester",
    "Wait For Line On Uart",
    "Write Line To Uart",
    "Should Not Be On Uart",
    "PC Should Be Equal",
}


@pytest.fixture(scope="module")
def libdoc():
    return LibraryDocumentation(str(LIBRARY))


def _library_class():
    return Importer("library").import_class_or_module_by_path(str(LIBRARY), instantiate_with_args=None)


def test_every_keyword_is_documented_with_its_arguments(libdoc) -> None:
    assert len(libdoc.keywords) >= 40
    for kw in libdoc.keywords:
        doc = kw.doc.strip()
        assert len(doc) >= 40, f"{kw.name}: documentation too short: {doc!r}"
        assert doc[0].isupper() and doc.split("\n")[0].strip(), f"{kw.name}: doc must start with a sentence"
        for arg in kw.args.argument_names:
            assert re.search(rf"\b{re.escape(arg)}\b", doc), f"{kw.name}: argument {arg!r} is not documented"


def test_library_introduction_and_renode_names(libdoc) -> None:
    assert "ENGINE" in libdoc.doc and "virtual" in libdoc.doc
    names = {kw.name for kw in libdoc.keywords}
    assert RENODE_NAMES <= names, RENODE_NAMES - names
    for required in ("DFU Download File", "Power Cycle", "Inject Wear", "Cut Power After Flash Operations"):
        assert required in names


def test_libdoc_command_writes_html(tmp_path: Path) -> None:
    out = tmp_path / "H743Board.html"
    proc = subprocess.run(
        [sys.executable, "-m", "robot.libdoc", str(LIBRARY), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = out.read_text()
    assert "Wait For Line On Uart" in html and "DFU Download File" in html


def _without_renode(monkeypatch: pytest.MonkeyPatch) -> str:
    for var in RENODE_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    from h743sim.renode.availability import missing_reason

    reason = missing_reason()
    assert reason, "this test needs a machine without Renode"
    return reason


def test_renode_engine_without_renode_skips_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    reason = _without_renode(monkeypatch)
    assert "\n" not in reason and reason.startswith("Renode host unavailable")
    monkeypatch.setenv("ENGINE", "renode")
    lib = _library_class()()
    with pytest.raises(SkipExecution) as skipped:
        lib.require_engine()
    assert str(skipped.value) == reason
    with pytest.raises(SkipExecution) as skipped:
        lib.create_board()  # never gets to build a board
    assert str(skipped.value) == reason
    # the library argument wins over the environment
    monkeypatch.setenv("ENGINE", "embedded")
    with pytest.raises(SkipExecution):
        _library_class()(engine="renode").require_engine()


def test_unknown_engine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE", "qemu")
    with pytest.raises(AssertionError, match="ENGINE must be one of embedded, renode, got 'qemu'"):
        _library_class()().require_engine()


def test_suite_is_reported_skipped_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A suite using the shared set-up is SKIPPED (not failed) under ENGINE=renode, with the reason."""
    reason = _without_renode(monkeypatch)
    suite = tmp_path / "engine_check.robot"
    suite.write_text(
        "*** Settings ***\n"
        f"Resource    {ROOT / 'robot' / 'resources' / 'common.resource'}\n"
        "Suite Setup    Board Suite Setup\n"
        "*** Test Cases ***\n"
        "Needs A Board\n"
        "    Create Board\n"
        "    Fail    must not run\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in RENODE_VARIABLES}
    env["ENGINE"] = "renode"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "robot",
            "--outputdir",
            str(tmp_path),
            "--report",
            "NONE",
            "--log",
            "NONE",
            str(suite),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # skips are not failures
    result = ExecutionResult(str(tmp_path / "output.xml"))
    stats = result.statistics.total
    assert (stats.passed, stats.failed, stats.skipped) == (0, 0, 1)
    test = result.suite.tests[0]
    assert test.status == "SKIP" and reason in test.message

"""The README's main job, `h743sim demo`: bootloader in, DFU download into QSPI, XIP boot."""

from pathlib import Path

from h743sim import cli


def test_demo_downloads_the_app_over_dfu_and_runs_it_in_place(firmware: Path, tmp_path, capsys):
    state = tmp_path / "demo"
    rc = cli.main(["demo", "--state", str(state), "--firmware-dir", str(firmware)])
    out = capsys.readouterr().out
    assert rc == 0, out
    lines = out.splitlines()
    # the order of the story: DFU mode with K2, a download, leave, then the app from the QSPI window
    for expected in (
        "BOOT K2 held: DFU mode",
        "DFU ready",
        "DFU leave",
        "BOOT jumping to 0x90000000",
        "APP running from 0x90000000",
        "blink 3",
    ):
        assert expected in lines, f"missing {expected!r} in:\n{out}"
    assert lines.index("DFU ready") < lines.index("DFU leave") < lines.index("APP running from 0x90000000")
    assert "executing in place from the QSPI window" in out
    # the app really is in the W25Q64 image that was saved: its vector table and header
    qspi = (state / "qspi.bin").read_bytes()
    app = (firmware / "app_qspi.bin").read_bytes()
    assert qspi[: len(app)] == app

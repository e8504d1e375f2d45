"""The DfuSe client against the fake DfuSe device through the pyusb backend (all in virtual time)."""

import pytest
import usb.core
from fake_dfu_device import (
    DFU_ERROR,
    DFU_IDLE,
    DNLOAD_IDLE,
    ERR_PROG,
    ERR_STALLEDPKT,
    UPLOAD_IDLE,
    FakeDfuseDevice,
)

from h743sim.dfuse.client import (
    DfuDeviceGone,
    DfuError,
    DfuProtocolError,
    DfuseClient,
    DfuStallError,
    DfuState,
    DfuStatus,
    DfuTimeoutError,
    DfuVerifyError,
    find_dfu_devices,
)
from h743sim.dfuse.dfufile import DfuElement, DfuFile, DfuTarget
from h743sim.dfuse.images import load_image, plan_download
from h743sim.dfuse.layout import LayoutError
from h743sim.usb.pyusb_backend import VirtualBackend

KB = 1024
QSPI, FLASH = 0x90000000, 0x08020000


def open_client(fake: FakeDfuseDevice, **kwargs) -> DfuseClient:
    dev = usb.core.find(backend=VirtualBackend(fake), idVendor=0x0483, idProduct=0xDF11)
    assert dev is not None
    return DfuseClient(dev, sleep_ms=fake.advance, **kwargs)


@pytest.fixture
def fake():
    return FakeDfuseDevice()


@pytest.fixture
def client(fake):
    return open_client(fake)


def pattern(n: int, seed: int = 1) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


def test_descriptors_alt_settings_and_layouts(client):
    assert client.interface == 0
    assert client.transfer_size == 1024
    f = client.functional
    assert (f.can_download, f.can_upload, f.manifestation_tolerant, f.will_detach, f.is_dfuse) == (
        True,
        True,
        False,
        True,
        True,
    )
    assert f.detach_timeout_ms == 255
    assert [(a.alt, a.layout.name) for a in client.alt_settings] == [(0, "Internal Flash"), (1, "QSPI Flash")]
    assert client.alt_for(QSPI, 16) == 1 and client.alt_for(0x08000000) == 0
    assert client.get_commands() == b"\x00\x21\x41"


def test_find_dfu_devices_lists_the_fake(fake):
    devs = find_dfu_devices(VirtualBackend(fake))
    assert [(d.idVendor, d.idProduct) for d in devs] == [(0x0483, 0xDF11)]
    client = DfuseClient.find(VirtualBackend(FakeDfuseDevice()), vid=0x0483, pid=0xDF11)
    assert client.transfer_size == 1024
    with pytest.raises(DfuDeviceGone, match="no DFU device 0483:1234 found"):
        DfuseClient.find(VirtualBackend(FakeDfuseDevice()), vid=0x0483, pid=0x1234)
    fake.attached = False
    with pytest.raises(DfuDeviceGone, match="no DFU device found"):
        DfuseClient.find(VirtualBackend(fake))


def test_download_to_qspi_erases_touched_sectors_then_writes_blocks_from_2(fake, client):
    data = pattern(5000)
    start = fake.now_ms
    client.download(QSPI + 0x800, data)
    assert fake.memories[1].peek(QSPI + 0x800, len(data)) == data
    erases = [c for c in fake.commands if c[0] == "erase"]
    assert erases == [("erase", QSPI), ("erase", QSPI + 0x1000)]  # 0x800..0x1B87 touches two 4 KB sectors
    writes = [c for c in fake.commands if c[0] == "write"]
    assert [(w[3], w[2]) for w in writes] == [(2, 1024), (3, 1024), (4, 1024), (5, 1024), (6, 904)]
    assert [w[1] for w in writes] == [QSPI + 0x800 + i * 1024 for i in range(5)]
    assert ("set_address", QSPI + 0x800) in fake.commands
    # bwPollTimeout honoured: nothing arrived while the device was busy, and the waits add up
    assert fake.early_requests == 0
    assert fake.now_ms - start == 2 * 45 + 5 * 2


def test_download_to_internal_flash_and_upload_back(fake, client):
    data = pattern(3 * 1024 + 17, seed=9)
    client.download(FLASH, data)
    assert client.upload(FLASH, len(data)) == data
    assert fake.memories[0].erase_counts == {FLASH: 1}
    assert fake.early_requests == 0
    assert fake.state == DFU_IDLE  # upload ends with ABORT


def test_transfer_size_comes_from_the_functional_descriptor():
    fake = FakeDfuseDevice(transfer_size=2048)
    client = open_client(fake)
    client.download(QSPI, pattern(5000))
    assert [c[2] for c in fake.commands if c[0] == "write"] == [2048, 2048, 904]
    assert client.upload(QSPI, 5000) == pattern(5000)


def test_address_every_block_mode_is_what_pydfu_does():
    fake = FakeDfuseDevice()
    client = open_client(fake, address_every_block=True)
    client.download(QSPI, pattern(2500), erase=False)
    sent = [c for c in fake.commands if c[0] in ("set_address", "write")]
    assert sent == [
        ("set_address", QSPI),
        ("write", QSPI, 1024, 2),
        ("set_address", QSPI + 1024),
        ("write", QSPI + 1024, 1024, 2),
        ("set_address", QSPI + 2048),
        ("write", QSPI + 2048, 452, 2),
    ]


def test_block_numbers_restart_from_2_with_a_new_pointer_before_they_wrap(client):
    blocks = list(client._blocks(0x90000000, 65536 * 4, 4))
    assert blocks[0] == (0x90000000, 2, 4)
    assert blocks[65533] == (0x90000000, 0xFFFF, 4)
    assert blocks[65534] == (0x90000000 + 65534 * 4, 2, 4)
    assert len(blocks) == 65536 and all(2 <= b <= 0xFFFF for _, b, _ in blocks)


def test_upload_reads_across_the_read_only_bootloader_sector(fake, client):
    fake.memories[0].poke(0x0801FFF0, b"BOOT" * 4)
    fake.memories[0].poke(0x08020000, b"APP!" * 4)
    assert client.upload(0x0801FFF0, 32) == b"BOOT" * 4 + b"APP!" * 4


def test_erase_sector_and_mass_erase(fake, client):
    qspi = fake.memories[1]
    qspi.poke(QSPI + 0x5123, b"\x00")
    assert client.erase(QSPI + 0x5123) == (QSPI + 0x5000, 4 * KB)
    assert qspi.peek(QSPI + 0x5123, 1) == b"\xff"
    flash = fake.memories[0]
    flash.poke(0x08040000, b"\x00" * 4)
    t = fake.now_ms
    assert client.erase(0x08041234) == (0x08040000, 128 * KB)
    assert fake.now_ms - t == 2000  # the internal-flash sector erase poll time
    qspi.poke(QSPI + 0x7FFFFF, b"\x12")
    client.mass_erase(alt=1)
    assert qspi.peek(QSPI + 0x7FFFFF, 1) == b"\xff" and len(qspi.erase_counts) == 2048
    assert fake.early_requests == 0


def test_erase_range_reports_progress(fake, client):
    seen = []
    sectors = client.erase_range(QSPI + 0xFFF, 2, progress=lambda *a: seen.append(a))
    assert sectors == [(QSPI, 4 * KB), (QSPI + 0x1000, 4 * KB)]
    assert seen == [("erase", 4 * KB, 8 * KB), ("erase", 8 * KB, 8 * KB)]


def test_download_progress_covers_both_phases(client):
    seen = []
    client.download(QSPI, pattern(2048), progress=lambda *a: seen.append(a))
    assert seen == [("erase", 4096, 4096), ("download", 1024, 2048), ("download", 2048, 2048)]


def test_checks_happen_before_the_device_is_touched(fake, client):
    before = len(fake.transfers)
    with pytest.raises(LayoutError, match="not writable"):
        client.download(0x08000000, b"\x00" * 16)  # the bootloader sector
    with pytest.raises(LayoutError, match="not inside any memory"):
        client.download(0xA0000000, b"\x00")
    with pytest.raises(LayoutError, match="outside the memory 'QSPI Flash'"):
        client.upload(0x907FFFF0, 32, alt=1)
    with pytest.raises(LayoutError, match="not erasable"):
        client.erase(0x08000100)
    with pytest.raises(LayoutError, match="outside the memory"):
        client.set_address(QSPI, alt=0)
    with pytest.raises(DfuProtocolError, match="alternate setting 4 does not exist"):
        client.download(QSPI, b"\x00", alt=4)
    assert len(fake.transfers) == before


def test_device_error_status_is_a_named_error_and_is_cleared(fake, client):
    fake.fail_next_write = ERR_PROG
    with pytest.raises(DfuError) as info:
        client.download(QSPI, pattern(100))
    err = info.value
    assert (err.status, err.status_name, err.state_name) == (DfuStatus.ERR_PROG, "errPROG", "dfuERROR")
    assert "DFU_DNLOAD block 2 (0x90000000, 100 bytes)" in str(err)
    assert "programming the memory failed" in str(err)
    assert fake.state == DFU_IDLE  # CLRSTATUS was sent
    client.download(QSPI, pattern(100))  # and the device works again
    assert fake.memories[1].peek(QSPI, 100) == pattern(100)


def test_writing_over_unerased_memory_is_err_verify(fake, client):
    client.download(QSPI, b"\x00" * 8)
    with pytest.raises(DfuError) as info:
        client.download(QSPI, b"\xff" * 8, erase=False)
    assert info.value.status_name == "errVERIFY"


def test_device_refused_address_is_err_target():
    # A device whose layout string promises more than it really has.
    fake = FakeDfuseDevice()
    client = open_client(fake)
    fake.memories[1].segments[0] = type(fake.memories[1].segments[0])(QSPI, 4 * KB, 16, "rew")
    with pytest.raises(DfuError) as info:
        client.download(QSPI + 0x10000, b"\x01")
    assert info.value.status_name == "errTARGET"


def test_mass_erase_unsupported_by_the_device():
    fake = FakeDfuseDevice(mass_erase_supported=False)
    with pytest.raises(DfuError, match="errUNKNOWN"):
        open_client(fake).mass_erase(alt=1)


def test_verify_detects_a_difference():
    class Liar(FakeDfuseDevice):
        def _upload(self, s):
            data = super()._upload(s)
            return bytes([data[0] ^ 0x01]) + data[1:] if s.wValue >= 2 and data else data

    fake = Liar()
    with pytest.raises(DfuVerifyError, match="verify failed at 0x90000000"):
        open_client(fake).download(QSPI, pattern(64), verify=True)
    open_client(FakeDfuseDevice()).download(QSPI, pattern(64), verify=True)


def test_a_request_in_the_wrong_state_stalls_and_the_client_says_so():
    class NoAbort(FakeDfuseDevice):  # firmware that ignores DFU_ABORT
        def _dfu(self, s, data):
            if s.bRequest == 6:
                return b""
            return super()._dfu(s, data)

    fake = NoAbort()
    client = open_client(fake)
    with pytest.raises(DfuStallError) as info:
        client.upload(QSPI, 16)  # UPLOAD while the device is still in dfuDNLOAD-IDLE
    err = info.value
    assert "DFU_UPLOAD block 2" in err.request
    assert err.state_after is not None and err.state_after.state == DFU_ERROR
    assert err.state_after.status == ERR_STALLEDPKT
    assert "errSTALLEDPKT in dfuERROR" in str(err)
    # recovery: CLRSTATUS brings it back
    assert client.recover_to_idle().state == DfuState.DFU_IDLE


@pytest.mark.parametrize("state", [DFU_ERROR, DNLOAD_IDLE, UPLOAD_IDLE])
def test_recovery_to_idle_from_each_state(fake, client, state):
    fake.state = state
    report = client.recover_to_idle()
    assert report.state == DfuState.DFU_IDLE and fake.state == DFU_IDLE


def test_recovery_from_a_pending_download(fake, client):
    client.device.ctrl_transfer(0x21, 1, 2, 0, b"\x00" * 4)  # DNLOAD with no GETSTATUS: dfuDNLOAD-SYNC
    assert client.get_state() == DfuState.DFU_DNLOAD_SYNC
    assert client.recover_to_idle().state == DfuState.DFU_IDLE


def test_recovery_gives_up_with_a_clear_message():
    class Stuck(FakeDfuseDevice):
        def _dfu(self, s, data):
            if s.bRequest in (4, 6):  # CLRSTATUS and ABORT do nothing
                return b""
            return super()._dfu(s, data)

    fake = Stuck()
    client = open_client(fake)
    fake.state = DFU_ERROR
    with pytest.raises(
        DfuProtocolError, match="could not bring the device back to dfuIDLE; it stays in dfuERROR"
    ):
        client.recover_to_idle()


def test_operations_recover_first(fake, client):
    fake.state, fake.status = DFU_ERROR, ERR_PROG
    client.download(QSPI, b"abc")
    assert fake.memories[1].peek(QSPI, 3) == b"abc"


def test_ignoring_bwpolltimeout_is_visible():
    # The check that the client waits is not vacuous: without waits the device sees early requests.
    fake = FakeDfuseDevice()
    dev = usb.core.find(backend=VirtualBackend(fake))
    client = DfuseClient(dev, sleep_ms=lambda ms: None)
    client.erase(QSPI)
    assert fake.early_requests > 0


def test_busy_longer_than_the_transfer_timeout_is_a_timeout_error():
    fake = FakeDfuseDevice()
    dev = usb.core.find(backend=VirtualBackend(fake))
    client = DfuseClient(dev, sleep_ms=lambda ms: None, status_timeout_ms=1000)
    with pytest.raises(DfuTimeoutError, match="DFU_GETSTATUS timed out"):
        client.erase(0x08020000)  # 2 s erase, polled at once with a 1 s timeout


def test_usb_timeout_is_a_timeout_error(fake, client):
    fake.hang_next = True
    with pytest.raises(DfuTimeoutError):
        client.get_status()


def test_leave_sees_manifest_and_the_device_goes(fake, client):
    client.download(FLASH, pattern(64))
    report = client.leave(address=FLASH)
    assert report is not None and report.state == DfuState.DFU_MANIFEST
    assert fake.left_with_pointer == FLASH and fake.attached is False
    leave_dnload = [t for t in fake.transfers if t.setup.bRequest == 1 and t.setup.wLength == 0]
    assert len(leave_dnload) == 1
    with pytest.raises(DfuDeviceGone, match="left DFU mode"):
        client.upload(FLASH, 4)
    client.close()  # tolerated with the device gone


def test_leave_tolerates_the_device_vanishing_before_the_status():
    class Vanishing(FakeDfuseDevice):
        def _dfu(self, s, data):
            out = super()._dfu(s, data)
            if s.bRequest == 1 and s.wLength == 0:
                self.attached = False  # resets straight after the zero-length DNLOAD
            return out

    fake = Vanishing()
    assert open_client(fake).leave() is None


def test_device_comes_back_after_leave_and_can_be_opened_again():
    fake = FakeDfuseDevice(reattach_after_leave_ms=100)
    backend = VirtualBackend(fake)
    client = DfuseClient(usb.core.find(backend=backend), sleep_ms=fake.advance)
    client.download(QSPI, b"keep")
    client.leave()
    assert usb.core.find(backend=backend) is None
    fake.advance(100)
    again = DfuseClient(usb.core.find(backend=backend), sleep_ms=fake.advance)
    assert again.upload(QSPI, 4) == b"keep" and fake.bus_resets == 2


def test_runtime_mode_interface_is_refused():
    fake = FakeDfuseDevice(interface_protocol=0x01)
    with pytest.raises(DfuProtocolError, match="DFU runtime interface"):
        open_client(fake)


def test_parts_sharing_a_sector_are_not_erased_twice(fake, client, tmp_path):
    path = tmp_path / "two.dfu"
    DfuFile(
        [
            DfuTarget(1, "QSPI", [DfuElement(QSPI, b"\x11" * 16), DfuElement(QSPI + 0x100, b"\x22" * 16)]),
            DfuTarget(0, "Internal", [DfuElement(FLASH, b"\x33" * 16)]),
        ]
    ).write(path)
    parts = plan_download(load_image(path), client.layouts)
    client.download_parts(parts)
    qspi = fake.memories[1]
    assert qspi.peek(QSPI, 16) == b"\x11" * 16 and qspi.peek(QSPI + 0x100, 16) == b"\x22" * 16
    assert qspi.erase_counts == {QSPI: 1}
    assert fake.memories[0].peek(FLASH, 16) == b"\x33" * 16


def test_download_parts_checks_all_parts_first(fake, client):
    from h743sim.dfuse.images import DownloadPart

    before = len(fake.transfers)
    with pytest.raises(LayoutError):
        client.download_parts([DownloadPart(1, QSPI, b"ok"), DownloadPart(0, 0x08000000, b"boot")])
    assert len(fake.transfers) == before

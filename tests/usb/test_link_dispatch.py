"""Thread hand-off of UsbLink calls: the dispatcher queue and the locked link."""

import threading

import pytest
from fake_dfu_device import FakeDfuseDevice

from h743sim.usb.dispatch import LinkDispatcher, LockedLink
from h743sim.usb.link import Setup, Stall

GET_DEVICE = Setup(0x80, 6, 0x0100, 0, 18)


def _worker(fn):
    out = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            out["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_calls_from_another_thread_run_on_the_serving_thread_in_order():
    fake = FakeDfuseDevice()
    dispatcher = LinkDispatcher(fake)
    link = dispatcher.proxy()
    t, out = _worker(lambda: (link.bus_reset(), link.control_transfer(GET_DEVICE), link.is_attached()))
    served = 0
    while t.is_alive() or served < 3:
        served += dispatcher.serve_pending(wait_s=0.05)
        if not t.is_alive() and served >= 3:
            break
    t.join()
    assert served == 3
    _, descriptor, attached = out["value"]
    assert descriptor[:4] == bytes([18, 1, 0x00, 0x02]) and attached is True
    assert fake.threads == {threading.get_ident()}


def test_errors_cross_the_thread_boundary():
    fake = FakeDfuseDevice()
    dispatcher = LinkDispatcher(fake)
    fake.bus_reset()
    t, out = _worker(lambda: dispatcher.proxy().control_transfer(Setup(0x80, 6, 0x0600, 0, 10)))
    while t.is_alive():
        dispatcher.serve_pending(wait_s=0.05)
    t.join()
    assert isinstance(out["error"], Stall)


def test_the_owner_thread_calls_directly():
    fake = FakeDfuseDevice()
    dispatcher = LinkDispatcher(fake)
    dispatcher.serve_pending()  # this thread becomes the owner
    assert dispatcher.proxy().is_attached() is True  # would deadlock if queued


def test_serve_pending_without_work_returns_zero():
    assert LinkDispatcher(FakeDfuseDevice()).serve_pending() == 0


def test_locked_link_serialises_calls():
    fake = FakeDfuseDevice()
    locked = LockedLink(fake)
    locked.bus_reset()
    inside = []

    class Probe:
        def __init__(self, link):
            self.link = link

        def control_transfer(self, setup, data=b"", timeout_ms=5000):
            inside.append(1)
            assert len(inside) == 1, "two calls inside the link at once"
            try:
                return self.link.control_transfer(setup, data, timeout_ms)
            finally:
                inside.pop()

    locked.link = Probe(fake)
    threads = [
        threading.Thread(target=lambda: [locked.control_transfer(GET_DEVICE) for _ in range(50)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fake.transfers) == 200


@pytest.mark.parametrize("wait", [0.0, 0.01])
def test_max_jobs_limits_one_round(wait):
    fake = FakeDfuseDevice()
    dispatcher = LinkDispatcher(fake)
    futures = [dispatcher.submit(lambda link: link.is_attached()) for _ in range(3)]
    assert dispatcher.serve_pending(wait_s=wait, max_jobs=2) == 2
    assert [f.done() for f in futures] == [True, True, False]
    assert dispatcher.serve_pending() == 1 and futures[2].result() is True

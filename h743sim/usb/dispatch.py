"""Calling a :class:`UsbLink` from other threads than the one that owns the board.

The virtual board is single-threaded: its CPU, models and virtual clock run on one thread, and a
control transfer runs the CPU until the firmware has answered. Host-side code that lives on other
threads (the USB/IP server's connection threads, a pyusb program in a worker thread) must not call the
link directly. Two ways to make that safe:

* :class:`LinkDispatcher` + :class:`DispatchedLink` (the board's own loop serves the link): other
  threads post each link call to a FIFO queue and block on its result; the board's thread calls
  :meth:`LinkDispatcher.serve_pending` between its own work (or :meth:`LinkDispatcher.serve_forever`
  when it has nothing else to do), so every call runs on the board's thread, in submission order.
  A call made from the owner thread itself runs at once (no self-deadlock).
* :class:`LockedLink`: a mutex around each call, for links that may run on any thread as long as
  only one call runs at a time and nothing else drives the board meanwhile (e.g. a board stepped only
  by its USB traffic, or a pure-Python test device).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from h743sim.usb.link import Setup, UsbLink

T = TypeVar("T")


class LinkDispatcher:
    """A queue of link calls, executed by whichever thread calls :meth:`serve_pending`."""

    def __init__(self, link: UsbLink) -> None:
        self.link = link
        self._jobs: queue.SimpleQueue[tuple[Callable[[UsbLink], object], Future]] = queue.SimpleQueue()
        self._owner: int | None = None
        self._serving = threading.local()

    def submit(self, fn: Callable[[UsbLink], T]) -> Future[T]:
        """Queue ``fn(link)`` for the owner thread; its result or exception lands in the future."""
        fut: Future[T] = Future()
        self._jobs.put((fn, fut))
        return fut

    def call(self, fn: Callable[[UsbLink], T], timeout_s: float | None = None) -> T:
        """Run ``fn(link)`` on the owner thread and return its result (raises what it raised)."""
        if getattr(self._serving, "active", False) or threading.get_ident() == self._owner:
            return fn(self.link)
        return self.submit(fn).result(timeout_s)

    def serve_pending(self, *, wait_s: float = 0.0, max_jobs: int | None = None) -> int:
        """Run queued calls on this thread (which becomes the owner); wait up to ``wait_s`` seconds
        for the first one. Returns how many ran."""
        self._owner = threading.get_ident()
        ran = 0
        block = wait_s > 0
        while max_jobs is None or ran < max_jobs:
            try:
                fn, fut = self._jobs.get(block=block, timeout=wait_s if block else None)
            except queue.Empty:
                break
            block = False
            if not fut.set_running_or_notify_cancel():
                continue
            self._serving.active = True
            try:
                fut.set_result(fn(self.link))
            except BaseException as exc:  # handed to the caller, whatever it is
                fut.set_exception(exc)
            finally:
                self._serving.active = False
            ran += 1
        return ran

    def serve_forever(
        self, stop: threading.Event, idle: Callable[[], None] | None = None, wait_s: float = 0.05
    ) -> None:
        """Serve calls until ``stop`` is set; ``idle()`` runs between waits (e.g. let the board run)."""
        while not stop.is_set():
            if self.serve_pending(wait_s=wait_s) == 0 and idle is not None:
                idle()

    def proxy(self) -> DispatchedLink:
        return DispatchedLink(self)


class DispatchedLink:
    """A :class:`UsbLink` whose calls run on the dispatcher's owner thread."""

    def __init__(self, dispatcher: LinkDispatcher) -> None:
        self.dispatcher = dispatcher

    def is_attached(self) -> bool:
        return self.dispatcher.call(lambda link: link.is_attached())

    def bus_reset(self) -> None:
        self.dispatcher.call(lambda link: link.bus_reset())

    def control_transfer(self, setup: Setup, data: bytes = b"", timeout_ms: int = 5000) -> bytes:
        return self.dispatcher.call(lambda link: link.control_transfer(setup, data, timeout_ms))


class LockedLink:
    """A :class:`UsbLink` with one call at a time, from any thread."""

    def __init__(self, link: UsbLink) -> None:
        self.link = link
        self.lock = threading.RLock()

    def is_attached(self) -> bool:
        with self.lock:
            return self.link.is_attached()

    def bus_reset(self) -> None:
        with self.lock:
            self.link.bus_reset()

    def control_transfer(self, setup: Setup, data: bytes = b"", timeout_ms: int = 5000) -> bytes:
        with self.lock:
            return self.link.control_transfer(setup, data, timeout_ms)

"""The embedded engine: unicorn 2.1.4 as the H743's Cortex-M7 plus Python NVIC/SCB/SysTick.

Entry points: :class:`Machine` (build the address space with ``add_ram``/``add_mmio`` and
``host_for``, then ``reset`` and ``run``) and :class:`StopReason`.
"""

from h743sim.engine.machine import Machine
from h743sim.engine.stop import EngineError, StopKind, StopReason

__all__ = ["EngineError", "Machine", "StopKind", "StopReason"]

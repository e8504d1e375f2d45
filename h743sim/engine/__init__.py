"""The embedded engine: unicorn 2.1.4 as the H743's Cortex-M7 plus Python NVIC/SCB/SysTick.

Entry points: :class:`Machine` (build the address space with ``add_ram``/``add_mmio``, give each
model ``host_for(name)``, then ``reset`` and ``run``), :class:`StopReason`/:class:`StopKind`
(why ``run`` returned) and :mod:`h743sim.engine.bench` (throughput figures).
"""

from h743sim.engine.machine import Machine
from h743sim.engine.memory import BusModel
from h743sim.engine.model_host import ModelHost
from h743sim.engine.stop import EngineError, StopKind, StopReason

__all__ = ["BusModel", "EngineError", "Machine", "ModelHost", "StopKind", "StopReason"]

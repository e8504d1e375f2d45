"""Python models of the STM32H743 DevEBox board's peripherals.

Every model is plain CPython with no knowledge of the engine hosting it: it sees bus accesses
(``read``/``write``/``reset``) and a :class:`peripherals.host.Host` given at construction.
"""

"""Pausing Python's cyclic garbage collector while bulk work builds many objects.

Loading a large pool or computing a run creates hundreds of thousands of small objects
(records, dicts, explanations) that all stay alive; each allocation burst triggers a
collection that walks every live object again, for nothing: it finds no cycles. Pausing the
collector for such a bounded stretch saves much of that time (a 20,000 x 8,000 run: the pool
builds in 0.85 s instead of 1.2 s, explaining takes 0.5 s instead of 1.0 s). Reference
counting still frees everything as usual; only cycles wait for the collector to run again.
"""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0  # stretches in progress (threads and coroutines may overlap)
_paused = False  # whether the collector was on and we switched it off


@contextmanager
def collector_paused() -> Iterator[None]:
    """Switch the cyclic collector off for the block (nested and overlapping blocks: it comes
    back on when the last one ends, and only if it was on before the first)."""
    global _holders, _paused
    with _lock:
        if _holders == 0 and gc.isenabled():
            gc.disable()
            _paused = True
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _paused:
                _paused = False
                gc.enable()

"""Failure injection, for tests only: a fault runs before each step an apply on a Host reaches.

    from vifplug.host.faults import injected

    def fault(step: Step) -> None:
        if step == target:
            raise RuntimeError(f"injected before {step.device}")

    with injected(host, fault):
        driver.plug(vif, host)  # StepFailed naming ``target``; the host is as it was before

This replaces the ``fault=`` argument the public plug/unplug signatures used to carry: the seam
lives here, next to the engine that consults it (:func:`before`), and production callers never
see it. A fault is a ``Callable[[Step], None]`` called with every step, checks included, just
before the step runs (for unplug: before each OVSDB step and each device deletion); whatever it
raises fails the apply there, exactly as if the step itself had failed.

Thread safety: faults belong to one :class:`~vifplug.host.Host` (a fault on one Host never fires
for another) and fire in every thread that applies on it; a fault meant for one thread's plug
picks its steps (or compares ``threading.get_ident()``). Injections may nest and overlap across
threads: each adds its fault on entry and removes exactly that one on exit, under a lock; the
faults of a Host run in the order they were injected, outside the lock (a fault may block, or
plug itself, without stalling other threads' applies). With nothing injected anywhere, the cost
per step is one dict length test.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from vifplug.plan import Step

if TYPE_CHECKING:
    from vifplug.host import Host

__all__ = ["Fault", "before", "injected"]

#: Called with each step just before it runs; raise to fail the apply there.
Fault = Callable[[Step], None]

_lock = threading.Lock()
#: The faults injected per Host (weakly: a Host that goes away takes its faults with it).
_faults: weakref.WeakKeyDictionary[Host, tuple[Fault, ...]] = weakref.WeakKeyDictionary()


@contextmanager
def injected(host: Host, fault: Fault) -> Iterator[None]:
    """Run ``fault`` before every step applied on ``host`` while in this block."""
    with _lock:
        _faults[host] = (*_faults.get(host, ()), fault)
    try:
        yield
    finally:
        with _lock:
            faults = list(_faults.get(host, ()))
            # This injection's entry: the last one that is this very callable.
            index = max(i for i, found in enumerate(faults) if found is fault)
            del faults[index]
            if faults:
                _faults[host] = tuple(faults)
            else:
                del _faults[host]


def before(host: Host, step: Step) -> None:
    """Run the faults injected on ``host`` for ``step`` (the engine calls this before each)."""
    if not _faults:
        return
    with _lock:
        faults = _faults.get(host, ())
    for fault in faults:
        fault(step)

"""One :class:`~vifplug.host.Host` used by many threads at once.

Two things make that work, and pay off:

* :class:`GroupCommit` — concurrent plugs and unplugs share OVSDB transactions. While one
  transaction is in flight, the steps of the callers arriving meanwhile queue; when it is done,
  the first of them sends everything queued as the next transaction. Fifty threads plugging at
  once cost a handful of transactions (and so of ovs-vswitchd reconfigurations), not fifty; a
  lone caller pays nothing for it. A transaction that fails is sent again caller by caller, so
  one caller's bad step (a port of the same name on another bridge, say) fails that caller
  alone, and each caller rolls back only what it did.
* :class:`NetlinkThread` — pyroute2 (0.9) keeps a netlink socket's state per thread: a second
  thread using it opens a socket of its own, never closed (and for a socket opened in another
  namespace, fails with ENOTSOCK). So the thread that first uses a Host's netlink keeps it, and
  the calls of every other thread run, one at a time, on one worker thread of the Host's with
  a second socket: two sockets however many threads come and go.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vifplug.host.netlink import Netlink
    from vifplug.plan import Step

__all__ = ["CommitStats", "GroupCommit", "NetlinkThread"]

#: Sends one transaction: ``steps`` → the ``next_cfg`` it committed (or ``None``).
Send = Callable[["Sequence[Step]"], "int | None"]


@dataclass
class CommitStats:
    """What a :class:`GroupCommit` has sent so far."""

    #: Transactions sent (each retry of a failed shared one counts).
    transactions: int = 0
    #: Callers' commits served.
    requests: int = 0
    #: The most callers one transaction carried.
    largest: int = 0


@dataclass(eq=False)
class _Request:
    steps: Sequence[Step]
    done: bool = False
    result: int | None = None
    error: BaseException | None = None

    def outcome(self) -> int | None:
        if self.error is not None:
            raise self.error
        return self.result


@dataclass
class GroupCommit:
    """Commit callers' OVSDB steps, sharing transactions between concurrent callers."""

    send: Send
    stats: CommitStats = field(default_factory=CommitStats)

    def __post_init__(self) -> None:
        self._changed = threading.Condition()
        self._queue: list[_Request] = []
        self._busy = False

    def commit(self, steps: Sequence[Step]) -> int | None:
        """Commit ``steps`` (in one transaction, alone or with other callers' steps). Returns
        the transaction's ``next_cfg``; a failure of these steps raises here, and only here."""
        request = _Request(steps)
        with self._changed:
            self._queue.append(request)
            self._changed.notify_all()  # for wait_for: one more caller queued
            while self._busy and not request.done:
                self._changed.wait()
            if request.done:  # another caller's transaction carried it
                return request.outcome()
            self._busy = True
            batch, self._queue = self._queue, []
            self._changed.notify_all()  # for wait_for: a transaction is in flight
        try:
            self._send(batch)
        finally:
            with self._changed:
                self._busy = False
                self._changed.notify_all()
        return request.outcome()

    def in_flight(self) -> bool:
        """Whether a transaction is being sent."""
        with self._changed:
            return self._busy

    def waiting(self) -> int:
        """Callers whose steps are queued behind the transaction in flight."""
        with self._changed:
            return len(self._queue)

    def wait_for(self, predicate: Callable[[GroupCommit], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (re-checked whenever a caller queues or a
        transaction ends); whether it did within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def _send(self, batch: list[_Request]) -> None:
        """One transaction for the whole batch; if it fails and carried several callers, one
        per caller, so each gets its own verdict (an OVSDB transaction that fails changed
        nothing; every step re-checks what exists when it runs). A transaction that timed out is
        not sent again: each of its callers gets the timeout."""
        self.stats.requests += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        # Identical steps (two VIFs' ensure-bridge) go out once.
        steps = list(dict.fromkeys(step for request in batch for step in request.steps))
        try:
            self.stats.transactions += 1
            result = self.send(steps)
        except BaseException as exc:
            if len(batch) > 1 and isinstance(exc, Exception) and not isinstance(
                    exc, TimeoutError):
                for request in batch:
                    self._send_alone(request)
            else:  # one caller's; or unanswered (sent again, it would only time out again)
                for request in batch:
                    request.error = exc
        else:
            for request in batch:
                request.result = result
        finally:
            with self._changed:
                for request in batch:
                    request.done = True
                self._changed.notify_all()

    def _send_alone(self, request: _Request) -> None:
        try:
            self.stats.transactions += 1
            request.result = self.send(request.steps)
        except BaseException as exc:
            request.error = exc


class NetlinkThread:
    """A :class:`~vifplug.host.netlink.Netlink` of its own, on a thread of its own: the calls
    of every thread but the one that owns the Host's first socket run here, one at a time."""

    def __init__(self, open_netlink: Callable[[], Netlink]) -> None:
        self._open = open_netlink
        self._netlink: Netlink | None = None
        self._executor = ThreadPoolExecutor(max_workers=1,
                                            thread_name_prefix="vifplug-netlink")

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._executor.submit(self._run, method, args, kwargs).result()

    def _run(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._netlink is None:
            self._netlink = self._open()
        return getattr(self._netlink, method)(*args, **kwargs)

    def proxy(self) -> Netlink:
        """A Netlink whose every method runs on this thread."""
        return _Forwarded(self)

    def close(self) -> None:
        """Close the socket on the thread that used it (pyroute2 frees a thread's event loop
        only there), then end the thread."""
        if self._netlink is not None:
            self._executor.submit(self._netlink.close).result()
            self._netlink = None
        self._executor.shutdown()


class _Forwarded:
    def __init__(self, thread: NetlinkThread) -> None:
        self._thread = thread

    def __getattr__(self, method: str) -> Callable[..., Any]:
        return functools.partial(self._thread.call, method)

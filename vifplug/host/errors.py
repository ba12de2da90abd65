"""Errors from the host edge."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vifplug.errors import VifplugError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from vifplug.ready import VifReadiness

__all__ = ["CommitTimeout", "HostError", "MissingDeviceError", "NotAppliedError", "NotReadyError",
           "StepFailed"]


class HostError(VifplugError, RuntimeError):
    """The host refused a change, or is not as a plan requires (names the device)."""

    def __init__(self, message: str, *, device: str | None = None) -> None:
        super().__init__(message)
        self.device = device


class CommitTimeout(HostError, TimeoutError):
    """OVSDB did not answer a transaction in time: it may or may not have been committed."""


class NotAppliedError(HostError, TimeoutError):
    """An unplug that is done — its ports out of OVSDB, its devices deleted — but that
    ovs-vswitchd did not apply in time (it may be stopped): nothing is left to undo or redo."""

    def __init__(self, cfg: int, cur_cfg: int | None, timeout: float) -> None:
        at = f" (it is at {cur_cfg})" if cur_cfg is not None else ""
        super().__init__(f"unplugged: the ports are out of OVSDB and the devices deleted, but "
                         f"ovs-vswitchd has not applied configuration {cfg} within {timeout:g} s"
                         f"{at}: is ovs-vswitchd running?")
        self.cfg = cfg
        self.cur_cfg = cur_cfg


class StepFailed(HostError):
    """A step of a plan failed; the steps already done were undone (see ``rolled_back``)."""

    def __init__(self, step: object, cause: BaseException, *, device: str | None,
                 rolled_back: bool, undo_errors: tuple[str, ...] = (),
                 remains: str | None = None) -> None:
        if undo_errors:
            state = "rollback was incomplete: " + "; ".join(undo_errors)
        elif not rolled_back:
            state = "nothing was undone"
        elif remains:
            state = f"what it changed was undone; {remains}"
        else:
            state = "the host is as before"
        super().__init__(f"{step}: failed: {cause} ({state})", device=device)
        self.step = step
        self.cause = cause
        self.rolled_back = rolled_back
        self.undo_errors = undo_errors
        #: What may stay on the host although the plug was rolled back.
        self.remains = remains


class MissingDeviceError(HostError, LookupError):
    """A device, bridge or PCI address the VIF names is not on this host. Nothing was changed;
    the VIF cannot be plugged here as described (exit 2, like other bad input)."""

    exit_code = 2


class NotReadyError(HostError, TimeoutError):
    """VIFs plugged (committed: their devices and OVS rows stay) that did not become ready in
    time. ``states`` says, per VIF, what does not hold yet; the message has one line per VIF."""

    def __init__(self, states: Sequence[VifReadiness], timeout: float) -> None:
        self.states = tuple(states)
        self.timeout = timeout
        waiting = [state for state in self.states if not state.ready]
        lines = [f"{len(waiting)} of {len(self.states)} VIF(s) not ready after {timeout:g} s "
                 "(what was plugged stays: wait again, or unplug):"]
        lines += [f"  {state.vif_id}: {'; '.join(state.reasons)}" for state in waiting]
        super().__init__("\n".join(lines), device=None)

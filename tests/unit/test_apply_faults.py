"""The test-only fault hook (vifplug.host.faults): out of the public signatures, per Host,
nestable, and safe with many threads applying at once."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path

import pytest
from helpers import EXAMPLES

from vifplug import GenericVIFDriver, load_vifs
from vifplug.host import Host, StepFailed, faults
from vifplug.host.apply import apply_plug, apply_unplug
from vifplug.host.fake import FakeNetlink, FakeOvsdb
from vifplug.host.faults import injected
from vifplug.plan import Plan, Step

VIF = load_vifs(Path(EXAMPLES / "ovs-hybrid.json"))[0]
PLAN = GenericVIFDriver().plan(VIF)


def fake_host() -> Host:
    return Host.using(FakeNetlink(), FakeOvsdb())


def state(host: Host) -> object:
    netlink, ovsdb = host.netlink, host.ovsdb
    assert isinstance(netlink, FakeNetlink)
    assert isinstance(ovsdb, FakeOvsdb)
    return netlink.state(), ovsdb.state()


def test_no_public_signature_carries_the_seam() -> None:
    for function in (GenericVIFDriver.plug, GenericVIFDriver.plug_many, GenericVIFDriver.unplug,
                     GenericVIFDriver.unplug_many, apply_plug, apply_unplug):
        assert "fault" not in inspect.signature(function).parameters, function


def test_faults_run_before_every_step_in_order() -> None:
    host = fake_host()
    seen: list[Step] = []
    with injected(host, seen.append):
        apply_plug([PLAN], host)
        apply_unplug([GenericVIFDriver().unplan(VIF)], host)
    assert seen == [*PLAN.steps, *GenericVIFDriver().unplan(VIF).steps]


def test_a_fault_fires_only_on_its_host() -> None:
    mine, other = fake_host(), fake_host()

    def fault(step: Step) -> None:
        raise RuntimeError("injected")

    with injected(mine, fault):
        assert not apply_plug([PLAN], other).already_done
        with pytest.raises(StepFailed):
            apply_plug([PLAN], mine)


def test_injections_nest_and_leave_nothing_behind() -> None:
    host = fake_host()
    calls: list[str] = []

    def outer(step: Step) -> None:
        calls.append("outer")

    def inner(step: Step) -> None:
        calls.append("inner")

    one_step = [Plan("x", "x", PLAN.steps[:1])]
    with injected(host, outer):
        with injected(host, inner), injected(host, outer):  # the same fault twice, too
            apply_plug(one_step, host)
            assert calls == ["outer", "inner", "outer"]
        calls.clear()
        apply_plug(one_step, host)
        assert calls == ["outer"]
    calls.clear()
    apply_plug(one_step, host)
    assert calls == []
    assert len(faults._faults) == 0


def test_an_injection_is_removed_even_when_the_block_fails() -> None:
    host = fake_host()

    def fault(step: Step) -> None:
        raise ZeroDivisionError

    with pytest.raises(StepFailed), injected(host, fault):
        apply_plug([PLAN], host)
    assert len(faults._faults) == 0
    assert not apply_plug([PLAN], host).already_done


def test_threads_inject_and_plug_at_once() -> None:
    """Eight threads, each with its own Host, inject a fault for one step of their own VIF and
    plug at the same moment: each sees exactly its own failure, and every Host is as before."""
    count = 8
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    hosts = [fake_host() for _ in range(count)]
    before = [state(host) for host in hosts]

    def run(index: int) -> None:
        host = hosts[index]
        target = PLAN.steps[1 + index % (len(PLAN.steps) - 1)]

        def fault(step: Step) -> None:
            if step == target:
                raise RuntimeError(f"thread {index}")

        with injected(host, fault):
            barrier.wait()
            try:
                apply_plug([PLAN], host)
            except StepFailed as failed:
                results[index] = (failed.step, str(failed.cause))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, host in enumerate(hosts):
        assert results[index] == (PLAN.steps[1 + index % (len(PLAN.steps) - 1)],
                                  f"thread {index}")
        assert state(host) == before[index]
    assert len(faults._faults) == 0


def test_a_fault_fires_in_every_thread_applying_on_its_host() -> None:
    """Faults belong to the Host, not to the thread that injected them."""
    host = fake_host()
    seen: list[str] = []
    lock = threading.Lock()

    def fault(step: Step) -> None:
        with lock:
            seen.append(threading.current_thread().name)

    with injected(host, fault):
        thread = threading.Thread(target=apply_plug, args=([Plan("x", "x", PLAN.steps[:1])],
                                                           host), name="other")
        thread.start()
        thread.join()
    assert seen == ["other"]

"""The apply engine without root: every plan every connection makes, applied to in-memory fakes of
the kernel's net devices and of OVSDB (vifplug.host.fake), through both OVSDB backends' own code.

For every plan: plug from empty, plug again (nothing changes, nothing is written), unplug of the
full and of every half-plugged state; a failure injected before each step and inside each
operation each step makes leaves the fakes exactly as before, with the StepFailed the real host
gives (tests/functional/test_rollback.py proves the same on the real kernel and OVS). Checks that
fail change nothing.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES

import vifplug.plan
from vifplug import GenericVIFDriver, UnsupportedError, load_vifs
from vifplug.host import Host, HostError, MissingDeviceError, StepFailed
from vifplug.host.apply import apply_plug, apply_unplug
from vifplug.host.fake import FakeNetlink, FakeOvsdb, netlink_error
from vifplug.host.faults import injected
from vifplug.model import Vif
from vifplug.plan import (
    DeleteLink,
    DeleteOvsPort,
    EnsureLinuxBridge,
    EnsureMaster,
    EnsureOvsBridge,
    EnsureOvsPort,
    EnsureTap,
    EnsureVeth,
    Plan,
    RequireLink,
    RequireOvsBridge,
    RequirePci,
    Step,
)

INSTANCE = "6c0b4a9e-2f1d-4e3c-8b7a-5d4c3b2a1f0e"
BACKENDS = ("native", "vsctl")
PCI = "0000:3b:00.2"  # examples/hostdev.json
VDPA = "vhost-vdpa-0"  # examples/vdpa.json's /dev/vhost-vdpa-0
#: What the undo-free message of a plug that was rolled back ends with.
AS_BEFORE = " (the host is as before)"
UNPLUG_NOTE = ("unplug does not roll back; run it again to finish",)


class Injected(RuntimeError):
    """The failure the tests inject."""


# --- every plan every connection makes ---------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One VIF under one driver setting: its plan and unplan."""

    vif: Vif
    firewall: bool
    create: bool
    plan: Plan
    unplan: Plan


def _cases() -> dict[str, Case]:
    """Every example VIF with and without a host firewall, with and without creating OVS
    bridges: ``<example>[-<index>][-firewall][-create]``."""
    cases: dict[str, Case] = {}
    files = {path: load_vifs(path) for path in EXAMPLES.glob("*.json")}
    for path, vifs in sorted(files.items(), key=lambda item: (len(item[1]) > 1, item[0].name)):
        for index, vif in enumerate(vifs):
            for firewall, create in itertools.product((False, True), repeat=2):
                driver = GenericVIFDriver(firewall=firewall)
                try:
                    plan = driver.plan(vif, instance_uuid=INSTANCE, create_ovs_bridges=create)
                except UnsupportedError:
                    continue
                name = path.stem + (f"-{index}" if len(vifs) > 1 else "") + (
                    "-firewall" if firewall else "") + ("-create" if create else "")
                cases[name] = Case(vif, firewall, create, plan, driver.unplan(vif))
    return cases


ALL_CASES = _cases()


def _distinct() -> dict[str, Case]:
    distinct: dict[str, Case] = {}
    seen: set[tuple[tuple[Step, ...], tuple[Step, ...]]] = set()
    for name, case in ALL_CASES.items():
        if (case.plan.steps, case.unplan.steps) not in seen:
            seen.add((case.plan.steps, case.unplan.steps))
            distinct[name] = case
    return distinct


#: The distinct plans among them (each under its first name): the ones the tests run.
CASES = _distinct()
HYBRID = ALL_CASES["ovs-hybrid"]


def ovsdb_steps(case: Case) -> list[Step]:
    return [step for step in case.plan.steps if step.phase == "ovsdb"]


def by_phase(steps: Sequence[Step], *phases: str) -> list[Step]:
    """``steps`` of these phases, phase after phase (plug runs checks, links, OVSDB; unplug
    OVSDB, then links)."""
    return [step for phase in phases for step in steps if step.phase == phase]


def backends(case: Case) -> tuple[str, ...]:
    """Both OVSDB backends when the plan or unplan touches OVSDB, else one."""
    touches = any(step.phase == "ovsdb" or isinstance(step, RequireOvsBridge)
                  for step in (*case.plan.steps, *case.unplan.steps))
    return BACKENDS if touches else ("native",)


def test_the_plans_cover_every_step_kind() -> None:
    kinds = {type(step) for case in CASES.values()
             for step in (*case.plan.steps, *case.unplan.steps)}
    every = {cls for cls in vars(vifplug.plan).values()
             if isinstance(cls, type) and issubclass(cls, Step) and dataclasses.is_dataclass(cls)}
    assert kinds == every, every - kinds
    assert len(kinds) == 13


# --- the fake host ---------------------------------------------------------------------------


class World:
    """A fake host as the plans expect it: the devices the checks require (and bystanders that
    must never change), br-int (unless the plan creates its OVS bridge), the PCI device."""

    def __init__(self, case: Case, backend: str, pci_dir: Path) -> None:
        self.netlink = FakeNetlink()
        self.netlink.add_device("eth1", None, up=True)  # bridge-firewalled's VLAN parent
        self.netlink.add_device("eth2", None, up=True)  # the macvtap lower device
        self.netlink.add_device("red", "bridge", up=True)  # bridge.json's bridge
        self.netlink.add_device("bystander", "bridge", up=True, mtu=9000)
        self.netlink.add_veth_pair("bya", "byb", up=True)
        self.netlink.devices["bya"].master = self.netlink.devices["bystander"].index
        creates_bridges = any(isinstance(step, EnsureOvsBridge) for step in case.plan.steps)
        self.ovsdb = FakeOvsdb(backend=backend,
                               bridges=() if creates_bridges else ("br-int",))
        self.ovsdb.add_bridge("br-ex")
        self.ovsdb.add_port("br-ex", "bystander-port", external_ids={"iface-id": "other"})
        (pci_dir / PCI).mkdir(parents=True, exist_ok=True)
        for vf in ("0000:3b:00.4",):  # examples/failover-pair.json's VF
            (pci_dir / vf).mkdir(exist_ok=True)
        # the vDPA device: a character device (/dev/null stands in) under a /dev of our own
        (pci_dir / "dev").mkdir(exist_ok=True)
        if not (pci_dir / "dev" / VDPA).is_symlink():
            (pci_dir / "dev" / VDPA).symlink_to("/dev/null")
        self.host = Host.using(self.netlink, self.ovsdb, pci_devices=pci_dir,
                               char_devices=pci_dir / "dev", lock_dir=pci_dir / "locks")

    def state(self) -> tuple[Any, Any]:
        return self.netlink.state(), self.ovsdb.state()

    def writes(self) -> tuple[list[tuple[str, str]], int]:
        return self.netlink.writes, self.ovsdb.transactions


@pytest.fixture
def make_world(tmp_path: Path) -> Callable[[Case, str], World]:
    return lambda case, backend: World(case, backend, tmp_path / "pci")


def case_params(each: Callable[[str, Case], list[tuple[Any, ...]]] | None = None,
                ) -> list[Any]:
    params = []
    for name, case in CASES.items():
        for backend in backends(case):
            for extra in (each(name, case) if each else [()]):
                suffix = "".join(f"-{part}" for part in extra[1:]) if extra else ""
                params.append(pytest.param(case, backend, *extra[:1],
                                           id=f"{name}-{backend}{suffix}"))
    return params


def expected_after_unplug(case: Case, world: World, plugged: tuple[Any, Any]) -> tuple[Any, Any]:
    """The plugged state less what the unplan deletes (a veth's peer goes with it)."""
    links, rows = plugged
    links = {name: dict(link) for name, link in links.items()}
    rows = {table: {name: dict(row) for name, row in found.items()}
            for table, found in rows.items()}
    for step in case.unplan.steps:
        if isinstance(step, DeleteLink) and step.name in links:
            peer = links.pop(step.name)
            if peer["kind"] == "veth":
                links.pop(peer["link"], None)
        elif isinstance(step, DeleteOvsPort) and step.port in rows["Port"]:
            for interface in rows["Port"].pop(step.port)["interfaces"]:
                rows["Interface"].pop(interface)
            for bridge in rows["Bridge"].values():
                bridge["ports"] = [port for port in bridge["ports"] if port != step.port]
    for link in links.values():
        if link["master"] not in links:
            link["master"] = None
    return links, rows


# --- plug from empty, plug again, unplug ----------------------------------------------------------


@pytest.mark.parametrize(("case", "backend"), case_params())
def test_plug_then_plug_again_then_unplug(case: Case, backend: str,
                                          make_world: Callable[[Case, str], World]) -> None:
    world = make_world(case, backend)
    before = world.state()

    outcome = apply_plug([case.plan], world.host)

    checks = by_phase(case.plan.steps, "check")
    assert outcome.unchanged == checks
    assert outcome.changed == by_phase(case.plan.steps, "link", "ovsdb")
    assert outcome.already_done == (not outcome.changed)
    plugged = world.state()
    if outcome.changed:
        assert plugged != before
    # Each OVSDB step's state holds in what the database now says.
    snapshot = world.ovsdb.snapshot(ovsdb_steps(case))
    assert all(step.holds(snapshot) for step in ovsdb_steps(case))

    writes = world.writes()
    again = apply_plug([case.plan], world.host)

    assert again.already_done
    assert again.unchanged == by_phase(case.plan.steps, "check", "link", "ovsdb")
    assert world.writes() == writes  # not one request that changes anything, no transaction
    assert world.state() == plugged

    unplugged = apply_unplug([case.unplan], world.host)

    assert world.state() == expected_after_unplug(case, world, plugged)
    links, rows = plugged
    assert unplugged.changed == by_phase(
        [step for step in case.unplan.steps
         if (isinstance(step, DeleteOvsPort) and step.port in rows["Port"])
         or (isinstance(step, DeleteLink) and step.name in links)], "ovsdb", "link")
    assert apply_unplug([case.unplan], world.host).already_done


@pytest.mark.parametrize(("case", "backend"), case_params())
def test_unplug_restores_the_host_when_the_unplan_covers_the_plan(
        case: Case, backend: str, make_world: Callable[[Case, str], World]) -> None:
    """Every plan that makes nothing shared (a bridge the network creates, an OVS bridge): plug
    then unplug leaves the host exactly as before."""
    shared = case.create or any(isinstance(step, EnsureLinuxBridge) and step.name == "br-red"
                                for step in case.plan.steps)
    world = make_world(case, backend)
    before = world.state()
    apply_plug([case.plan], world.host)
    apply_unplug([case.unplan], world.host)
    if shared:
        assert world.state() != before
    else:
        assert world.state() == before


@pytest.mark.parametrize(("case", "backend"), case_params())
def test_through_the_driver(case: Case, backend: str,
                            make_world: Callable[[Case, str], World]) -> None:
    """GenericVIFDriver.plug/unplug (per-VIF locks in the Host's lock_dir) do the same."""
    world = make_world(case, backend)
    driver = GenericVIFDriver(firewall=case.firewall)
    plugged = driver.plug(case.vif, world.host, instance_uuid=INSTANCE,
                          create_ovs_bridges=case.create)
    assert plugged.changed == by_phase(case.plan.steps, "link", "ovsdb")
    assert driver.plug(case.vif, world.host, instance_uuid=INSTANCE,
                       create_ovs_bridges=case.create).already_done
    state = world.state()
    driver.unplug(case.vif, world.host)
    assert world.state() == expected_after_unplug(case, world, state)
    assert world.host.lock_dir is not None
    assert list(world.host.lock_dir.iterdir()) == []  # unplug removed the VIF's lock file


def test_both_backends_leave_the_same_rows(tmp_path: Path) -> None:
    for name, case in CASES.items():
        if backends(case) == ("native",):
            continue
        states = []
        for backend in BACKENDS:
            world = World(case, backend, tmp_path / name / backend)
            apply_plug([case.plan], world.host)
            states.append(world.ovsdb.state())
        assert states[0] == states[1], name


# --- a failure before each step -----------------------------------------------------------------


def _step_indexes(name: str, case: Case) -> list[tuple[Any, ...]]:
    return [(index, f"step{index + 1}") for index in range(len(case.plan.steps))]


def applied_before(steps: tuple[Step, ...], target: Step) -> list[Step]:
    """The changing steps apply_plug runs before ``target`` (checks, then links, then OVSDB)."""
    order = {"check": 0, "link": 1, "ovsdb": 2}
    ordered = sorted(steps, key=lambda step: order[step.phase])
    return [step for step in ordered[:ordered.index(target)] if step.phase != "check"]


@pytest.mark.parametrize(("case", "backend", "index"), case_params(_step_indexes))
def test_failure_before_each_step_is_rolled_back(case: Case, backend: str, index: int,
                                                 make_world: Callable[[Case, str], World]
                                                 ) -> None:
    world = make_world(case, backend)
    target = case.plan.steps[index]
    before = world.state()
    at_failure: list[Any] = []

    def fault(step: Step) -> None:
        if step == target:
            at_failure.append(world.state())
            raise Injected(f"injected before {step.device}")

    with pytest.raises(StepFailed) as raised, injected(world.host, fault):
        apply_plug([case.plan], world.host)

    failed = raised.value
    assert failed.step == target
    assert isinstance(failed.cause, Injected)
    assert failed.device == target.device
    assert str(failed) == f"{target}: failed: injected before {target.device}{AS_BEFORE}"
    assert failed.rolled_back
    assert failed.undo_errors == ()
    assert world.state() == before
    assert len(at_failure) == 1
    if any(step.phase == "link" for step in applied_before(case.plan.steps, target)):
        assert at_failure[0] != before  # not vacuous: the earlier steps had changed the host
    # And the host is usable: the same plug now succeeds, from scratch.
    assert apply_plug([case.plan], world.host).changed == by_phase(case.plan.steps, "link",
                                                                    "ovsdb")


# --- a failure inside each operation a step makes ------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One call a clean plug makes: on which fake, which occurrence of (operation, device), and
    the step the engine was at."""

    fake: str
    operation: str
    device: str
    skip: int
    step: Step

    def __str__(self) -> str:
        nth = f"#{self.skip + 1}" if self.skip else ""
        return f"{self.fake}.{self.operation}({self.device}){nth}"


def trace(case: Case, backend: str) -> list[Call]:
    """Every call a clean plug of ``case`` makes, with the step it was made for."""
    with tempfile.TemporaryDirectory() as directory:
        return _traced(World(case, backend, Path(directory)), case)


def _traced(world: World, case: Case) -> list[Call]:
    at: list[Step] = []
    calls: list[Call] = []
    seen: dict[tuple[str, str, str], int] = {}

    def listener(fake: str) -> Callable[[str, str], None]:
        def heard(operation: str, device: str) -> None:
            key = (fake, operation, device)
            calls.append(Call(fake, operation, device, seen.get(key, 0), at[-1]))
            seen[key] = seen.get(key, 0) + 1
        return heard

    world.netlink.listen(listener("netlink"))
    world.ovsdb.listen(listener("ovsdb"))
    with injected(world.host, at.append):
        apply_plug([case.plan], world.host)
    return calls


def _calls(backend: str) -> Callable[[str, Case], list[tuple[Any, ...]]]:
    def each(name: str, case: Case) -> list[tuple[Any, ...]]:
        # netlink calls once (with the native backend), OVSDB calls with each backend
        return [(call, str(call)) for call in trace(case, backend)
                if call.fake == "ovsdb" or backend == "native"]
    return each


INSIDE = [param for backend in BACKENDS for param in case_params(_calls(backend))
          if param.values[1] == backend]

#: The OVSDB calls made once the whole OVSDB phase is in one transaction.
TRANSACTION = frozenset({"commit", "add_br", "add_port", "db_set", "del_port", "add-br",
                         "refuse_port_elsewhere",
                         "add-port", "set", "del-port"})


@pytest.mark.parametrize(("case", "backend", "call"), INSIDE)
def test_failure_inside_each_operation_is_rolled_back(case: Case, backend: str, call: Call,
                                                      make_world: Callable[[Case, str], World]
                                                      ) -> None:
    world = make_world(case, backend)
    before = world.state()
    fake = world.netlink if call.fake == "netlink" else world.ovsdb
    fake.fail(call.operation, call.device, skip=call.skip)

    with pytest.raises(StepFailed) as raised:
        apply_plug([case.plan], world.host)

    failed = raised.value
    pending = ovsdb_steps(case)
    if call.fake == "ovsdb" and call.operation in TRANSACTION and len(pending) > 1:
        assert getattr(failed.step, "steps", None) == tuple(pending)  # the transaction
        assert failed.device == ", ".join(step.device for step in pending)
    elif call.fake == "ovsdb" and call.operation in TRANSACTION:
        assert failed.step == pending[0]
    else:
        assert failed.step == call.step
        assert failed.device == call.step.device
    assert "injected in" in str(failed.cause)
    assert str(failed) == f"{failed.step}: failed: {failed.cause}{AS_BEFORE}"
    assert failed.rolled_back
    assert failed.undo_errors == ()
    assert world.state() == before


def stale(world: World) -> None:
    """HYBRID's devices and port already there, every setting plug owns different: a qbr with
    the kernel's timers, MTU 1500, down, IPv6 on, left in a deletion group; the veth pair at
    MTU 1500, down, qvb on another bridge; the port with another tag and identity."""
    vif = HYBRID.vif
    world.netlink.add_device(vif.qbr_name, "bridge", mtu=1500, group=7)
    world.netlink.add_veth_pair(vif.qvb_name, vif.qvo_name, mtu=1500, master="bystander")
    world.netlink.devices[vif.qvo_name].master = None
    world.ovsdb.add_port("br-int", vif.qvo_name, external_ids={"iface-id": "old"},
                         mtu_request=[1500])
    world.ovsdb.rows["Port"][vif.qvo_name]["tag"] = [5]


def stale_trace(backend: str) -> list[Call]:
    with tempfile.TemporaryDirectory() as directory:
        world = World(HYBRID, backend, Path(directory))
        stale(world)
        return _traced(world, HYBRID)


STALE = [pytest.param(backend, call, id=f"{backend}-{call}") for backend in BACKENDS
         for call in stale_trace(backend) if call.fake == "ovsdb" or backend == "native"]


@pytest.mark.parametrize(("backend", "call"), STALE)
def test_failure_inside_each_operation_over_stale_devices_restores_them(
        backend: str, call: Call, make_world: Callable[[Case, str], World]) -> None:
    """Plug changes every setting of what is there (timers, IPv6, MTU, up, group, master, the
    port's columns); a failure at any of its calls puts every one back."""
    world = make_world(HYBRID, backend)
    stale(world)
    before = world.state()
    (world.netlink if call.fake == "netlink" else world.ovsdb).fail(
        call.operation, call.device, skip=call.skip)
    with pytest.raises(StepFailed) as raised:
        apply_plug([HYBRID.plan], world.host)
    assert raised.value.rolled_back, raised.value
    assert raised.value.step == call.step
    assert world.state() == before


def test_stale_devices_are_converged_by_plug(make_world: Callable[[Case, str], World]) -> None:
    clean = make_world(HYBRID, "native")
    apply_plug([HYBRID.plan], clean.host)
    world = make_world(HYBRID, "native")
    stale(world)
    assert apply_plug([HYBRID.plan], world.host).changed == by_phase(HYBRID.plan.steps, "link",
                                                                     "ovsdb")
    assert world.state() == clean.state()
    operations = {param.values[1].operation for param in STALE}
    assert operations >= {"set_bridge", "ipv6_disabled", "name_of", "set_master", "update"}


def test_inside_failures_reach_every_link_operation() -> None:
    """Not vacuous: the traced calls include every netlink operation plug makes."""
    operations = {param.values[2].operation for param in INSIDE
                  if param.values[2].fake == "netlink"}
    assert operations == {"get", "add_bridge", "add_veth", "add_vlan", "add_tap", "update",
                          "set_master", "disable_ipv6"}
    assert {param.values[2].operation for param in INSIDE if param.values[1] == "vsctl"
            } >= {"bridge_exists", "snapshot", "commit", "add-br", "add-port", "set"}


# --- unplug ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "backend", "index"), case_params(
    lambda name, case: [(index, f"after{index}") for index in range(len(case.plan.steps))]))
def test_unplug_of_a_half_plugged_vif_finishes_the_job(case: Case, backend: str, index: int,
                                                        make_world: Callable[[Case, str], World]
                                                        ) -> None:
    """A plug that got through its first ``index`` steps (then died): unplug removes what there
    is of what the unplan names; and a plug from there converges to a clean plug's state."""
    full = make_world(case, backend)
    apply_plug([case.plan], full.host)
    plugged = full.state()

    world = make_world(case, backend)
    apply_plug([Plan(case.plan.vif_id, case.plan.connection, case.plan.steps[:index])],
               world.host)
    half = world.state()
    apply_unplug([case.unplan], world.host)
    assert world.state() == expected_after_unplug(case, world, half)

    again = make_world(case, backend)
    apply_plug([Plan(case.plan.vif_id, case.plan.connection, case.plan.steps[:index])],
               again.host)
    apply_plug([case.plan], again.host)
    assert again.state() == plugged


def _unplug_steps(name: str, case: Case) -> list[tuple[Any, ...]]:
    return [(index, f"step{index + 1}") for index in range(len(case.unplan.steps))]


@pytest.mark.parametrize(("case", "backend", "index"), case_params(_unplug_steps))
def test_failed_unplug_finishes_when_run_again(case: Case, backend: str, index: int,
                                               make_world: Callable[[Case, str], World]
                                               ) -> None:
    world = make_world(case, backend)
    apply_plug([case.plan], world.host)
    plugged = world.state()
    target = case.unplan.steps[index]

    def fault(step: Step) -> None:
        if step == target:
            raise Injected("injected")

    with pytest.raises(StepFailed) as raised, injected(world.host, fault):
        apply_unplug([case.unplan], world.host)

    assert raised.value.step == target
    assert raised.value.device == target.device
    assert raised.value.rolled_back is False
    assert raised.value.undo_errors == UNPLUG_NOTE
    assert str(raised.value) == f"{target}: failed: injected (rollback was incomplete: " \
                                f"{UNPLUG_NOTE[0]})"
    if isinstance(target, DeleteLink):  # the OVSDB part was done
        assert not any(port in world.ovsdb.rows["Port"] for port in (
            step.port for step in case.unplan.steps if isinstance(step, DeleteOvsPort)))
    apply_unplug([case.unplan], world.host)
    assert world.state() == expected_after_unplug(case, world, plugged)


UNPLUG_CALLS = [
    # (fake, operation): the requests an unplug of a hybrid VIF makes
    ("ovsdb", "snapshot"), ("ovsdb", "commit"), ("netlink", "update"),
    ("netlink", "delete_group"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("fake", "operation"), UNPLUG_CALLS)
def test_unplug_failing_inside_a_request_finishes_when_run_again(
        fake: str, operation: str, backend: str,
        make_world: Callable[[Case, str], World]) -> None:
    case = ALL_CASES["ovs-hybrid"]
    world = make_world(case, backend)
    apply_plug([case.plan], world.host)
    plugged = world.state()
    (world.netlink if fake == "netlink" else world.ovsdb).fail(operation)

    with pytest.raises(StepFailed) as raised:
        apply_unplug([case.unplan], world.host)

    assert raised.value.rolled_back is False
    assert raised.value.undo_errors == UNPLUG_NOTE
    if fake == "netlink":  # the two devices' deletion is one request
        assert str(raised.value.step) == (f"2 steps in one request ({case.vif.qvb_name}, "
                                          f"{case.vif.qbr_name})")
    else:
        assert raised.value.step == case.unplan.steps[0]
    apply_unplug([case.unplan], world.host)
    assert world.state() == expected_after_unplug(case, world, plugged)


def test_unplug_deletes_every_device_in_one_group_request(
        make_world: Callable[[Case, str], World]) -> None:
    cases = [ALL_CASES["ovs-hybrid"], ALL_CASES["ethernet"]]
    world = make_world(cases[0], "native")
    for case in cases:
        apply_plug([case.plan], world.host)
    del world.netlink.calls[:]
    apply_unplug([case.unplan for case in cases], world.host)
    deletes = [call for call in world.netlink.calls if call[0].startswith("delete")]
    assert len(deletes) == 1
    assert deletes[0][0] == "delete_group"
    assert set(world.netlink.devices) == {"lo", "eth1", "eth2", "red", "bystander", "bya", "byb"}


def test_a_device_left_in_a_deletion_group_is_put_back_by_plug(
        make_world: Callable[[Case, str], World]) -> None:
    """An unplug killed between moving the devices to its group and deleting the group: the
    next plug puts them back in group 0 (and a rolled back plug puts them back in the group)."""
    case = ALL_CASES["ovs-hybrid"]
    world = make_world(case, "native")
    apply_plug([case.plan], world.host)
    plugged = world.state()
    for name in (case.vif.qvb_name, case.vif.qbr_name):
        world.netlink.update(name, group=4242)
    killed = world.state()
    fail_at_the_port(world)
    assert world.state() == killed
    outcome = apply_plug([case.plan], world.host)
    assert outcome.changed == [case.plan.steps[1], case.plan.steps[2]]
    assert world.state() == plugged


# --- checks ---------------------------------------------------------------------------------


CHECKS = {
    "no br-int": ("ovs-hybrid", lambda w: w.ovsdb.rows["Bridge"].pop("br-int"),
                  "OVS bridge br-int does not exist (unix:/run/openvswitch/db.sock); create it, "
                  "or plug with --create-ovs-bridge"),
    "no red": ("bridge", lambda w: w.netlink.devices.pop("red"),
               "Linux bridge red does not exist on this host"),
    "red is a veth": ("bridge", lambda w: (w.netlink.devices.pop("red"),
                                           w.netlink.add_veth_pair("red", "red-peer")),
                      "Linux bridge red is a veth device, not a bridge"),
    "red is plain": ("bridge", lambda w: (w.netlink.devices.pop("red"),
                                          w.netlink.add_device("red", None)),
                     "Linux bridge red is a plain device, not a bridge"),
    "no eth2": ("direct", lambda w: w.netlink.devices.pop("eth2"),
                "macvtap lower device eth2 does not exist on this host"),
    "no eth1": ("bridge-firewalled", lambda w: w.netlink.devices.pop("eth1"),
                "VLAN parent device eth1 does not exist on this host"),
    "no VF": ("hostdev", lambda w: (w.host.pci_devices / PCI).rmdir(),
              f"PCI device {PCI} does not exist on this host (PCI_DIR/{PCI} is missing)"),
    "no vDPA device": ("vdpa", lambda w: (w.host.char_devices / VDPA).unlink(),
                       f"vDPA device /dev/{VDPA} does not exist on this host "
                       f"(PCI_DIR/dev/{VDPA} is missing)"),
    "vDPA device not a char device": (
        "vdpa", lambda w: ((w.host.char_devices / VDPA).unlink(),
                           (w.host.char_devices / VDPA).write_text("")),
        f"vDPA device /dev/{VDPA} is not a character device (PCI_DIR/dev/{VDPA})"),
}


@pytest.mark.parametrize("what", list(CHECKS))
def test_a_failing_check_changes_nothing(what: str,
                                         make_world: Callable[[Case, str], World]) -> None:
    name, breaking, message = CHECKS[what]
    case = ALL_CASES[name]
    world = make_world(case, "vsctl")
    breaking(world)
    before = world.state()
    with pytest.raises(MissingDeviceError) as raised:
        apply_plug([case.plan], world.host)
    assert str(raised.value) == message.replace("PCI_DIR", str(world.host.pci_devices))
    assert raised.value.exit_code == 2
    assert world.state() == before
    assert world.writes() == ([], 0)


def test_a_check_names_the_namespace(tmp_path: Path) -> None:
    case = ALL_CASES["direct"]
    world = World(case, "native", tmp_path)
    world.host.netns = "blue"
    world.netlink.devices.pop("eth2")
    with pytest.raises(MissingDeviceError, match=r"does not exist on this host \(network "
                                                 r"namespace blue\)$"):
        apply_plug([case.plan], world.host)


def test_checks_of_a_whole_batch_run_before_any_change(
        make_world: Callable[[Case, str], World]) -> None:
    """The last VIF's bridge is missing: not even the first VIF's devices are made."""
    cases = [ALL_CASES["ovs-hybrid"], ALL_CASES["bridge"]]
    world = make_world(cases[0], "native")
    world.netlink.devices.pop("red")
    before = world.state()
    with pytest.raises(MissingDeviceError):
        apply_plug([case.plan for case in cases], world.host)
    assert world.state() == before
    assert world.writes() == ([], 0)


# --- what is there already: changed by plug, restored by rollback, never deleted ----------------



def fail_at_the_port(world: World) -> None:
    port = HYBRID.plan.steps[-1]

    def fault(step: Step) -> None:
        if step == port:
            raise Injected("injected")

    with pytest.raises(StepFailed) as raised, injected(world.host, fault):
        apply_plug([HYBRID.plan], world.host)
    assert raised.value.rolled_back, raised.value


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_existing_qbr_is_restored(backend: str,
                                     make_world: Callable[[Case, str], World]) -> None:
    world = make_world(HYBRID, backend)
    world.netlink.add_device(HYBRID.vif.qbr_name, "bridge", mtu=1500, group=7)
    before = world.state()
    fail_at_the_port(world)
    assert world.state() == before  # delay 15 s, ageing 300 s, down, IPv6 on, group 7


def test_an_existing_qbr_restored_when_its_own_step_fails_halfway(
        make_world: Callable[[Case, str], World]) -> None:
    world = make_world(HYBRID, "native")
    world.netlink.add_device(HYBRID.vif.qbr_name, "bridge", mtu=1500)
    before = world.state()
    seen: list[dict[str, Any]] = []

    def record_and_fail() -> None:  # the MTU/up request, after the timers and IPv6 changed
        seen.append(world.netlink.state()[HYBRID.vif.qbr_name])
        raise OSError(errno.EIO, "injected")

    world.netlink.intercept("update", HYBRID.vif.qbr_name, record_and_fail)
    with pytest.raises(StepFailed) as raised:
        apply_plug([HYBRID.plan], world.host)
    assert isinstance(raised.value.step, EnsureLinuxBridge)
    assert (seen[0]["forward_delay"], seen[0]["ageing_time"], seen[0]["ipv6_disabled"]) == (
        0, 0, True)
    assert world.state() == before


def test_an_existing_veth_on_another_bridge_is_restored(
        make_world: Callable[[Case, str], World]) -> None:
    world = make_world(HYBRID, "vsctl")
    world.netlink.add_veth_pair(HYBRID.vif.qvb_name, HYBRID.vif.qvo_name, mtu=1500,
                                master="bystander")
    world.netlink.devices[HYBRID.vif.qvo_name].master = None
    before = world.state()
    fail_at_the_port(world)
    assert world.state() == before


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failed_replug_restores_the_previous_plug(
        backend: str, make_world: Callable[[Case, str], World]) -> None:
    world = make_world(HYBRID, backend)
    apply_plug([HYBRID.plan], world.host)
    plugged = world.state()
    data = HYBRID.vif.to_dict()
    data["mtu"], data["network"]["vlan"] = 9000, 200
    changed = GenericVIFDriver().plan(Vif.parse(data), instance_uuid=INSTANCE)
    world.ovsdb.fail("commit")
    with pytest.raises(StepFailed):
        apply_plug([changed], world.host)
    assert world.state() == plugged
    assert not apply_plug([changed], world.host).already_done
    assert world.netlink.devices[HYBRID.vif.qbr_name].mtu == 9000
    assert world.ovsdb.rows["Port"][HYBRID.vif.qvo_name]["tag"] == [200]


@pytest.mark.parametrize(("existing", "message"), [
    (lambda w, v: w.netlink.add_device(v.qbr_name, "veth"),
     "{qbr} exists but is a veth device, not a Linux bridge"),
    (lambda w, v: w.netlink.add_device(v.qvo_name, "veth"),
     "{qvo} exists without its veth peer {qvb}; delete it"),
    (lambda w, v: w.netlink.add_veth_pair(v.qvb_name, "stranger"),
     "{qvb} exists but is not a veth paired with {qvo}"),
])
def test_a_device_of_the_wrong_kind_is_refused_and_left_alone(
        existing: Callable[[World, Vif], Any], message: str,
        make_world: Callable[[Case, str], World]) -> None:
    world = make_world(HYBRID, "native")
    vif = HYBRID.vif
    existing(world, vif)
    before = world.state()
    with pytest.raises(StepFailed) as raised:
        apply_plug([HYBRID.plan], world.host)
    assert isinstance(raised.value.cause, HostError)
    assert str(raised.value.cause) == message.format(qbr=vif.qbr_name, qvb=vif.qvb_name,
                                                     qvo=vif.qvo_name)
    assert world.state() == before


@pytest.mark.parametrize("flags", [(False, True, True), (True, False, True), (True, True, False)],
                         ids=["packet-info", "no-vnet-hdr", "single-queue"])
def test_a_tap_with_other_flags_is_refused(flags: tuple[bool, bool, bool],
                                           make_world: Callable[[Case, str], World]) -> None:
    case = ALL_CASES["ovs-manual"]  # multi-queue
    world = make_world(case, "native")
    world.netlink.add_device(case.vif.tap_name, "tun", tun_flags=flags)
    before = world.state()
    with pytest.raises(StepFailed) as raised:
        apply_plug([case.plan], world.host)
    assert isinstance(raised.value.step, EnsureTap)
    assert "multi_queue=on (QEMU could not open it)" in str(raised.value)
    assert world.state() == before


def test_a_matching_tap_is_used() -> None:
    case = ALL_CASES["ovs-manual"]
    netlink, ovsdb = FakeNetlink(), FakeOvsdb()
    netlink.add_device(case.vif.tap_name, "tun", tun_flags=(True, True, True), mtu=1450,
                       up=True)
    outcome = apply_plug([case.plan], Host.using(netlink, ovsdb))
    assert outcome.changed == [case.plan.steps[-1]]  # only the port


def test_a_port_on_another_bridge_is_refused_by_both_backends(tmp_path: Path) -> None:
    messages = {}
    for backend in BACKENDS:
        world = World(HYBRID, backend, tmp_path / backend)
        world.ovsdb.add_port("br-ex", HYBRID.vif.qvo_name)
        before = world.state()
        with pytest.raises(StepFailed) as raised:
            apply_plug([HYBRID.plan], world.host)
        assert raised.value.device == HYBRID.vif.qvo_name
        assert "br-ex" in str(raised.value)
        assert raised.value.rolled_back
        assert world.state() == before
        messages[backend] = str(raised.value.cause)
    assert messages["native"] == (f"OVS port {HYBRID.vif.qvo_name} is already on bridge br-ex, "
                                  "not br-int: delete it there first")


def test_a_concurrent_creator_is_not_undone(make_world: Callable[[Case, str], World]) -> None:
    """The device appears between 'does it exist' and 'create it' (EEXIST): plug uses it, and a
    rollback leaves it to whoever made it."""
    world = make_world(HYBRID, "native")
    qbr = HYBRID.vif.qbr_name
    world.netlink.intercept("add_bridge", qbr, lambda: world.netlink.add_device(qbr, "bridge"))
    world.ovsdb.fail("commit")
    with pytest.raises(StepFailed):
        apply_plug([HYBRID.plan], world.host)
    assert world.netlink.devices[qbr].forward_delay == FakeNetlink.BRIDGE_FORWARD_DELAY
    assert not world.netlink.devices[qbr].up


def test_an_incomplete_rollback_is_not_reported_as_rolled_back(
        make_world: Callable[[Case, str], World]) -> None:
    world = make_world(HYBRID, "native")
    for _ in range(2):
        world.netlink.fail("delete", error=netlink_error(errno.EBUSY))
    world.ovsdb.fail("commit")
    with pytest.raises(StepFailed) as raised:
        apply_plug([HYBRID.plan], world.host)
    assert len(raised.value.undo_errors) == 2  # the veth pair and the qbr stayed
    assert raised.value.undo_errors == (
        f"undo of '{HYBRID.plan.steps[2]}': (16, 'Device or resource busy')",
        f"undo of '{HYBRID.plan.steps[1]}': (16, 'Device or resource busy')")
    assert "rollback was incomplete" in str(raised.value)
    assert raised.value.rolled_back is False
    assert HYBRID.vif.qbr_name in world.netlink.devices


def test_a_batch_failing_at_the_last_step_rolls_back_every_vif(
        make_world: Callable[[Case, str], World]) -> None:
    plans = [ALL_CASES["ovs-hybrid"].plan, ALL_CASES["ethernet"].plan, ALL_CASES["ovs-manual"].plan,
             ALL_CASES["bridge-firewalled"].plan]
    world = make_world(HYBRID, "vsctl")  # (its kernel has 8021q: the VLAN device is made)
    before = world.state()
    world.ovsdb.fail("add-port", ALL_CASES["ovs-manual"].vif.tap_name)
    with pytest.raises(StepFailed) as raised:
        apply_plug(plans, world.host)
    assert str(raised.value.step).startswith("2 steps in one request")
    assert world.state() == before


def test_a_kernel_without_vlans_fails_the_vlan_step(
        make_world: Callable[[Case, str], World]) -> None:
    """Like the test machines' kernel (no 8021q): the plan is refused at its VLAN step and the
    Linux bridge it had made is gone again."""
    case = ALL_CASES["bridge-firewalled"]
    world = make_world(case, "native")
    world.netlink.kinds = frozenset({"bridge", "veth", "tun"})
    before = world.state()
    with pytest.raises(StepFailed) as raised:
        apply_plug([case.plan], world.host)
    assert raised.value.step == case.plan.steps[2]
    assert str(raised.value.cause) == "(95, 'Operation not supported')"
    assert world.state() == before


# --- plans that ask for what a phase cannot do ----------------------------------------------------


def test_a_delete_step_cannot_be_plugged_nor_an_ensure_unplugged(
        make_world: Callable[[Case, str], World]) -> None:
    world = make_world(HYBRID, "native")
    before = world.state()
    with pytest.raises(StepFailed) as raised:
        apply_plug([Plan("x", "x", (EnsureTap("tapx"), DeleteLink("tapx")))], world.host)
    assert isinstance(raised.value.cause, TypeError)
    assert str(raised.value.cause) == "DeleteLink cannot be plugged: delete tapx if it exists"
    assert world.state() == before
    with pytest.raises(TypeError, match="EnsureVeth cannot be unplugged"):
        apply_unplug([Plan("x", "x", (DeleteOvsPort("p"), EnsureVeth("a", "b")))], world.host)
    assert world.state() == before  # refused before the OVSDB part
    assert apply_unplug([Plan("x", "x", (RequirePci("0000:00:00.0"),))],
                        world.host).already_done  # checks are skipped by unplug


def test_step_hooks_of_another_phase_are_refused() -> None:
    with pytest.raises(TypeError, match="RequireLink is a check step, not an ovsdb step"):
        RequireLink("x").vsctl_commands()
    with pytest.raises(TypeError, match="EnsureOvsPort is an ovsdb step, not a link step"):
        EnsureOvsPort("br", "p").deletes()
    with pytest.raises(TypeError, match="EnsureMaster is a link step, not a check step"):
        EnsureMaster("a", "b").check(Host())


# --- the fakes behave like the kernel and OVSDB where plans can tell ---------------------------


def code(call: Callable[[], object]) -> int:
    from pyroute2 import NetlinkError

    with pytest.raises(NetlinkError) as raised:
        call()
    return int(raised.value.code)


def test_fake_netlink_refuses_as_the_kernel_does() -> None:
    netlink = FakeNetlink()
    netlink.add_bridge("br0", forward_delay=None, ageing_time=None)
    assert code(lambda: netlink.add_bridge("br0", forward_delay=None, ageing_time=None)) == \
        errno.EEXIST
    assert code(lambda: netlink.add_veth("v0", "br0")) == errno.EEXIST  # the peer's name too
    assert "v0" not in netlink.devices
    assert code(lambda: netlink.update("nope", mtu=1500)) == errno.ENODEV
    assert code(lambda: netlink.update("br0", mtu=67)) == errno.EINVAL
    assert code(lambda: netlink.delete_group(5)) == errno.ENODEV
    assert code(lambda: netlink.set_master("br0", 999)) == errno.EINVAL
    netlink.add_veth("v0", "v1")
    assert code(lambda: netlink.set_master("br0", netlink.devices["v0"].index)) == \
        errno.EOPNOTSUPP
    netlink.add_bridge("br1", forward_delay=None, ageing_time=None)
    assert code(lambda: netlink.set_master("br1", netlink.devices["br0"].index)) == errno.ELOOP
    assert code(lambda: netlink.delete("lo")) == errno.EOPNOTSUPP
    assert code(lambda: netlink.add_bridge("a" * 16, forward_delay=None,
                                           ageing_time=None)) == errno.EINVAL
    assert netlink.delete("nope") is False


def test_fake_netlink_deletes_as_the_kernel_does() -> None:
    netlink = FakeNetlink()
    netlink.add_bridge("br0", forward_delay=0, ageing_time=None)
    netlink.add_veth("v0", "v1")
    netlink.set_master("v0", netlink.devices["br0"].index)
    netlink.add_device("eth1", None)
    netlink.add_vlan("eth1.5", "eth1", 5)
    assert code(lambda: netlink.add_vlan("other", "eth1", 5)) == errno.EEXIST
    netlink.add_tap("tap0", multi_queue=False)
    netlink.update("v1", group=9)
    netlink.update("tap0", group=9)
    netlink.delete_group(9)  # v1 takes v0 with it
    assert set(netlink.devices) == {"lo", "br0", "eth1", "eth1.5"}
    netlink.devices["eth1"].kind = "veth"  # (deletable, for the cascade)
    netlink.delete("eth1")
    assert set(netlink.devices) == {"lo", "br0"}
    netlink.add_veth("v0", "v1")
    netlink.set_master("v0", netlink.devices["br0"].index)
    netlink.delete("br0")
    assert netlink.get("v0") is not None
    assert netlink.devices["v0"].master is None


def test_fake_tun_attaches_or_refuses_as_the_kernel_does() -> None:
    netlink = FakeNetlink()
    netlink.add_tap("tap0", multi_queue=True)
    netlink.add_tap("tap0", multi_queue=True)  # TUNSETIFF attaches to a matching TAP
    assert code(lambda: netlink.add_tap("tap0", multi_queue=False)) == errno.EINVAL
    netlink.add_bridge("br0", forward_delay=None, ageing_time=None)
    assert code(lambda: netlink.add_tap("br0", multi_queue=False)) == errno.EINVAL
    link = netlink.get("tap0")
    assert link is not None
    assert (link.kind, link.tun_flags, link.up) == ("tun", (True, True, True), False)


def test_fake_ipv6_switch() -> None:
    netlink = FakeNetlink()
    netlink.add_bridge("br0", forward_delay=None, ageing_time=None)
    assert netlink.ipv6_disabled("br0") is False
    netlink.disable_ipv6("br0")
    assert netlink.ipv6_disabled("br0") is True
    assert netlink.ipv6_disabled("nope") is None
    without = FakeNetlink(ipv6=False)
    without.add_bridge("br0", forward_delay=None, ageing_time=None)
    without.disable_ipv6("br0")
    assert without.ipv6_disabled("br0") is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_fake_ovsdb_commits_all_or_nothing(backend: str) -> None:
    ovsdb = FakeOvsdb(backend=backend)
    before = ovsdb.state()
    steps = [EnsureOvsPort("br-int", "p1", tag=5), EnsureOvsPort("br-nope", "p2")]
    with pytest.raises(HostError, match=r"OVSDB transaction failed: .*br-nope"):
        ovsdb.commit(steps)
    assert ovsdb.state() == before
    ovsdb.commit(steps[:1])
    assert ovsdb.rows["Port"]["p1"]["tag"] == [5]
    assert ovsdb.rows["Bridge"]["br-int"]["ports"] == ["br-int", "p1"]
    ovsdb.commit([DeleteOvsPort("p1"), DeleteOvsPort("p1")])
    assert ovsdb.state() == before


def test_host_using_fakes_keeps_them_across_close() -> None:
    netlink, ovsdb = FakeNetlink(), FakeOvsdb()
    with Host.using(netlink, ovsdb) as host:
        assert host.netlink is netlink
        assert host.ovsdb is ovsdb
    assert netlink.closed
    assert ovsdb.closed
    assert host.netlink is netlink
    assert host.ovsdb is ovsdb

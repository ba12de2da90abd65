"""A plug that fails leaves the host exactly as it was: real devices, real private OVS.

Failures are injected at every step of every plan through the test-only fault hook
(``vifplug.host.faults.injected``), inside steps (a netlink call or the OVSDB commit raising after
part of the step was done), for real (an OVSDB transaction the database refuses), in batches, and
over pre-existing devices that plug changed and rollback must restore rather than delete. (The
same failure points are unit-tested against in-memory fakes in tests/unit/test_apply.py; these
prove them on the real kernel and OVS.) The host is compared with
tests/fixtures/snapshot.py before and after.
"""

from __future__ import annotations

import errno
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from pytest_mock import MockerFixture

from tests.fixtures import Netns
from tests.fixtures.snapshot import HostSnapshot, links_snapshot
from tests.functional.conftest import Env
from vifplug import names
from vifplug.driver import GenericVIFDriver
from vifplug.host import HostError, StepFailed
from vifplug.host.faults import injected
from vifplug.host.netlink import Pyroute2Netlink
from vifplug.model import Vif
from vifplug.plan import (
    DeleteLink,
    EnsureLinuxBridge,
    EnsureMaster,
    EnsureOvsBridge,
    EnsureOvsPort,
    EnsureTap,
    EnsureVeth,
    RequireOvsBridge,
    Step,
)

DRIVER = GenericVIFDriver()
INSTANCE = "6c0b4a9e-2f1d-4e3c-8b7a-5d4c3b2a1f0e"


class Injected(RuntimeError):
    """The failure the tests inject."""


def assert_same(before: HostSnapshot, after: HostSnapshot) -> None:
    assert after == before, "\n".join(after.diff(before))


def ipv6_disabled(netns: Netns, name: str) -> bool:
    value = netns.run("cat", f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6").stdout.strip()
    return value == "1"


# --- a failure at every step of every plan -----------------------------------------------------

#: plan → (how many steps it has, whether it touches OVSDB: then both backends are run)
PLANS = {
    "bridge-create": (1, False),
    "ethernet": (1, False),
    "hybrid": (5, True),
    "hybrid-create-ovs-bridge": (5, True),
    "manual": (3, True),
    "virtualport": (1, True),
    "virtualport-create-ovs-bridge": (1, True),
}


def build(plan: str, env: Env) -> tuple[Vif, bool]:
    """The VIF for ``plan`` (with fresh bridge names where the plan creates one), and whether
    plug may create OVS bridges."""
    fresh = f"rb{uuid.uuid4().hex[:8]}"
    if plan == "bridge-create":
        env.leftovers.links.append(fresh)
        return env.vif("bridge.json", network={"bridge": fresh, "create_bridge": True}), False
    if plan == "ethernet":
        return env.vif("ethernet.json"), False
    if plan == "hybrid":
        return env.vif("ovs-hybrid.json"), False
    if plan == "hybrid-create-ovs-bridge":
        env.leftovers.bridges.append(fresh)
        return env.vif("ovs-hybrid.json", network={"bridge": fresh}), True
    if plan == "manual":
        return env.vif("ovs-manual.json"), False
    if plan == "virtualport":
        return env.vif("ovs-virtualport.json"), False
    env.leftovers.bridges.append(fresh)
    return env.vif("ovs-virtualport.json", network={"bridge": fresh},
                   ovs={"datapath_type": "netdev"}), True


FAULT_CASES = [
    pytest.param(plan, index, backend, id=f"{plan}-step{index + 1}-{backend}")
    for plan, (count, ovsdb) in PLANS.items()
    for index in range(count)
    for backend in (("native", "vsctl") if ovsdb else ("native",))
]


def applied_before(steps: tuple[Step, ...], target: Step) -> list[Step]:
    """The changing steps apply_plug runs before ``target`` (checks, then links, then OVSDB)."""
    order = {"check": 0, "link": 1, "ovsdb": 2}
    ordered = sorted(steps, key=lambda step: order[step.phase])  # stable within a phase
    return [step for step in ordered[:ordered.index(target)] if step.phase != "check"]


@pytest.mark.parametrize(("plan_name", "index", "backend"), FAULT_CASES)
def test_failure_at_every_step_is_rolled_back(plan_name: str, index: int, backend: str,
                                              env: Env) -> None:
    vif, create = build(plan_name, env)
    plan = DRIVER.plan(vif, instance_uuid=INSTANCE, create_ovs_bridges=create)
    assert len(plan.steps) == PLANS[plan_name][0], plan
    target = plan.steps[index]
    host = env.host(backend)
    before = env.snapshot()
    at_failure: list[dict[str, Any]] = []

    def fault(step: Step) -> None:
        if step == target:
            at_failure.append(links_snapshot(env.netns))
            raise Injected(f"injected before {step.device}")

    with pytest.raises(StepFailed) as raised, injected(host, fault):
        DRIVER.plug(vif, host, instance_uuid=INSTANCE, create_ovs_bridges=create)

    failed = raised.value
    assert failed.step == target
    assert isinstance(failed.cause, Injected)
    assert failed.device == target.device
    assert str(failed).startswith(f"{target}: failed: injected before {target.device}")
    assert failed.rolled_back
    assert failed.undo_errors == ()
    assert_same(before, env.snapshot())
    # Not vacuous: the devices of the steps before the failure really existed then.
    assert len(at_failure) == 1
    if any(step.phase == "link" for step in applied_before(plan.steps, target)):
        assert at_failure[0] != before.links
    if index < len(plan.steps) - 1:
        return
    # And the host is usable: the same plug now succeeds, and unplug restores it.
    DRIVER.plug(vif, host, instance_uuid=INSTANCE, create_ovs_bridges=create)
    DRIVER.unplug(vif, host)
    for bridge in env.leftovers.bridges:
        env.ovs.vsctl("--if-exists", "del-br", bridge)
    for name in env.leftovers.links:
        env.netns.delete_link(name)
    assert_same(before, env.snapshot())


# --- failures inside a step -------------------------------------------------------------------


def failing_for(original: Callable[..., Any], name: str, record: Callable[[], None]
                ) -> Callable[..., Any]:
    """A Pyroute2Netlink method (autospec'd: gets self) that fails for device ``name`` only."""

    def method(self: Pyroute2Netlink, device: str, *args: Any, **kwargs: Any) -> Any:
        if device == name:
            record()
            raise OSError(errno.EIO, f"injected in {original.__name__}({device})")
        return original(self, device, *args, **kwargs)

    return method


INSIDE = {
    # method, which device it fails for, the step that must be named
    "disable_ipv6 on the new qbr": ("ovs-hybrid.json", "disable_ipv6", "qbr", EnsureLinuxBridge),
    # update: MTU, up and link group in one request
    "update (mtu, up) of the new qbr": ("ovs-hybrid.json", "update", "qbr", EnsureLinuxBridge),
    "update (mtu, up) of the new qvb": ("ovs-hybrid.json", "update", "qvb", EnsureVeth),
    "update (mtu, up) of the new qvo": ("ovs-hybrid.json", "update", "qvo", EnsureVeth),
    "set_master of qvb": ("ovs-hybrid.json", "set_master", "qvb", EnsureMaster),
    "update (mtu, up) of the new TAP": ("ovs-manual.json", "update", "tap", EnsureTap),
    "update (up) of the new TAP": ("ethernet.json", "update", "tap", EnsureTap),
}


@pytest.mark.parametrize("case", list(INSIDE))
def test_failure_inside_a_netlink_step_is_rolled_back(case: str, env: Env,
                                                      mocker: MockerFixture) -> None:
    example, method, prefix, step_type = INSIDE[case]
    vif = env.vif(example)
    device = {"qbr": names.qbr_name, "qvb": names.qvb_name, "qvo": names.qvo_name,
              "tap": names.tap_name}[prefix](vif.id)
    host = env.host("native")
    before = env.snapshot()
    existed: list[bool] = []
    mocker.patch.object(Pyroute2Netlink, method, autospec=True, side_effect=failing_for(
        getattr(Pyroute2Netlink, method), device,
        lambda: existed.append(env.netns.link(device) is not None)))

    with pytest.raises(StepFailed) as raised:
        DRIVER.plug(vif, host, instance_uuid=INSTANCE)

    assert existed == [True]  # the device had been created when the step failed
    assert isinstance(raised.value.step, step_type)
    assert raised.value.device == raised.value.step.device
    assert isinstance(raised.value.cause, OSError)
    assert raised.value.rolled_back
    assert raised.value.undo_errors == ()
    assert_same(before, env.snapshot())


@pytest.mark.parametrize("example", ["ovs-hybrid.json", "ovs-manual.json"])
def test_failure_of_the_ovsdb_commit_is_rolled_back(example: str, ovsdb_backend: str, env: Env,
                                                    mocker: MockerFixture) -> None:
    vif = env.vif(example)
    host = env.host(ovsdb_backend)
    port_step = DRIVER.plan(vif, instance_uuid=INSTANCE).steps[-1]
    assert isinstance(port_step, EnsureOvsPort)
    before = env.snapshot()
    at_commit: list[dict[str, Any]] = []

    def refuse(steps: list[Step]) -> None:
        at_commit.append(links_snapshot(env.netns))
        raise HostError("OVSDB transaction failed: injected")

    commit = mocker.patch.object(type(host.ovsdb), "commit", autospec=True,
                                 side_effect=lambda _self, steps, **_: refuse(steps))

    with pytest.raises(StepFailed) as raised:
        DRIVER.plug(vif, host, instance_uuid=INSTANCE)

    assert commit.call_count == 1
    assert at_commit[0] != before.links  # the devices existed when the transaction failed
    assert raised.value.step == port_step
    assert raised.value.device == port_step.port
    assert raised.value.rolled_back
    assert_same(before, env.snapshot())


# --- a transaction the database really refuses --------------------------------------------------


def other_bridge(env: Env) -> str:
    """Another OVS bridge, its internal port's MTU pinned (else it follows the smallest MTU of
    the bridge's ports: OVS's derived state, which no rollback touches)."""
    other = f"ro{uuid.uuid4().hex[:8]}"
    env.leftovers.bridges.append(other)
    env.ovs.add_bridge(other)
    env.ovs.vsctl("set", "Interface", other, "mtu_request=1500")
    return other


@pytest.mark.parametrize("backend", [
    "native",
    "vsctl",
])
def test_port_already_on_another_bridge(backend: str, env: Env) -> None:
    """A stale port of the same name on another bridge (the VIF was on another network): the
    plug must either fail and leave the host as it was, or move the port; never 'succeed' with
    the port elsewhere."""
    other = other_bridge(env)
    vif = env.vif("ovs-hybrid.json")
    env.ovs.vsctl("add-port", other, vif.qvo_name, "--", "set", "Interface", vif.qvo_name,
                  "external_ids:iface-id=someone-else")
    before = env.snapshot()

    failure: StepFailed | None = None
    try:
        DRIVER.plug(vif, env.host(backend), instance_uuid=INSTANCE)
    except StepFailed as failed:
        failure = failed
    if failure is None:  # moving the port would do too
        assert vif.qvo_name not in env.ovs.ports(other), f"plug left {vif.qvo_name} on {other}"
        assert vif.qvo_name in env.ovs.ports(env.br_int)
        assert env.ovs.get("Interface", vif.qvo_name, "external_ids:iface-id") == vif.id
        return
    assert failure.device == vif.qvo_name
    assert other in str(failure)  # the database's reason: the port is on that bridge
    assert failure.rolled_back
    assert_same(before, env.snapshot())


# --- batches -------------------------------------------------------------------------------


def test_batch_failing_at_the_last_vifs_ovsdb_step_rolls_back_all(ovsdb_backend: str,
                                                                  env: Env) -> None:
    vifs = [env.vif("ovs-hybrid.json") for _ in range(3)]
    last_port = DRIVER.plan(vifs[-1], instance_uuid=INSTANCE).steps[-1]
    assert isinstance(last_port, EnsureOvsPort)
    host = env.host(ovsdb_backend)
    before = env.snapshot()
    at_failure: list[dict[str, Any]] = []

    def fault(step: Step) -> None:
        if step == last_port:
            at_failure.append(links_snapshot(env.netns))
            raise Injected("injected")

    with pytest.raises(StepFailed) as raised, injected(host, fault):
        DRIVER.plug_many(vifs, host, instance_uuid=INSTANCE)

    assert raised.value.step == last_port
    assert raised.value.device == vifs[-1].qvo_name
    assert all(vif.qbr_name in at_failure[0] and vif.qvb_name in at_failure[0] for vif in vifs)
    assert_same(before, env.snapshot())


def test_batch_refused_by_the_database_rolls_back_all(env: Env) -> None:
    """The third VIF's port name is taken on another bridge: ovs-vsctl refuses the one
    transaction, so none of the three ports exists and all their devices go."""
    other = other_bridge(env)
    vifs = [env.vif("ovs-hybrid.json") for _ in range(3)]
    env.ovs.vsctl("add-port", other, vifs[-1].qvo_name)
    before = env.snapshot()

    with pytest.raises(StepFailed) as raised:
        DRIVER.plug_many(vifs, env.host("vsctl"), instance_uuid=INSTANCE)

    assert vifs[-1].qvo_name in str(raised.value)
    assert raised.value.rolled_back
    assert_same(before, env.snapshot())


# --- pre-existing devices: rollback restores, never deletes -------------------------------------


def test_existing_qbr_is_restored(ovsdb_backend: str, env: Env) -> None:
    """A qbr that was there (MTU 1500, forward delay 15 s, ageing 300 s, down, IPv6 on) is
    changed by plug (1450, 0, 0, up, IPv6 off); a later step fails: it is put back as it was."""
    vif = env.vif("ovs-hybrid.json")
    env.netns.ip("link", "add", "name", vif.qbr_name, "mtu", "1500", "type", "bridge",
                 "forward_delay", "1500")
    host = env.host(ovsdb_backend)
    before = env.snapshot()
    qbr_before = before.links[vif.qbr_name]
    assert (qbr_before["mtu"], qbr_before["forward_delay"], qbr_before["up"]) == (1500, 1500,
                                                                                  False)
    assert not ipv6_disabled(env.netns, vif.qbr_name)
    port_step = DRIVER.plan(vif, instance_uuid=INSTANCE).steps[-1]
    at_failure: list[dict[str, Any]] = []

    def fault(step: Step) -> None:
        if step == port_step:
            at_failure.append(links_snapshot(env.netns)[vif.qbr_name])
            at_failure.append({"ipv6_disabled": ipv6_disabled(env.netns, vif.qbr_name)})
            raise Injected("injected")

    with pytest.raises(StepFailed), injected(host, fault):
        DRIVER.plug(vif, host, instance_uuid=INSTANCE)

    changed, ipv6 = at_failure
    assert (changed["mtu"], changed["forward_delay"], changed["ageing_time"], changed["up"]) == (
        1450, 0, 0, True)
    assert ipv6 == {"ipv6_disabled": True}
    after = env.snapshot()
    # Still there with its MTU, delay, ageing, down. Its MAC is the kernel's business: a bridge
    # whose MAC was not set takes its ports' and, when the last one leaves, becomes
    # 00:00:00:00:00:00 (br_stp_recalculate_bridge_id); setting the old one back would pin it.
    assert after.links[vif.qbr_name]["address"] == "00:00:00:00:00:00"
    after.links[vif.qbr_name]["address"] = before.links[vif.qbr_name]["address"]
    assert_same(before, after)
    assert not ipv6_disabled(env.netns, vif.qbr_name)


def test_existing_qbr_restored_when_its_own_step_fails_halfway(env: Env,
                                                               mocker: MockerFixture) -> None:
    """The bridge step changed the delay and IPv6, then its MTU/up change fails: both undone."""
    vif = env.vif("ovs-hybrid.json")
    env.netns.ip("link", "add", "name", vif.qbr_name, "mtu", "1500", "type", "bridge",
                 "forward_delay", "1500")
    host = env.host("native")
    before = env.snapshot()
    seen: list[dict[str, Any]] = []
    mocker.patch.object(Pyroute2Netlink, "update", autospec=True, side_effect=failing_for(
        Pyroute2Netlink.update, vif.qbr_name,
        lambda: seen.append({**links_snapshot(env.netns)[vif.qbr_name],
                             "ipv6_disabled": ipv6_disabled(env.netns, vif.qbr_name)})))

    with pytest.raises(StepFailed) as raised:
        DRIVER.plug(vif, host, instance_uuid=INSTANCE)

    assert isinstance(raised.value.step, EnsureLinuxBridge)
    assert seen[0]["forward_delay"] == 0
    assert seen[0]["ipv6_disabled"]
    assert_same(before, env.snapshot())
    assert not ipv6_disabled(env.netns, vif.qbr_name)


def test_existing_veth_on_another_bridge_is_restored(ovsdb_backend: str, env: Env) -> None:
    """qvb/qvo existed (MTU 1500, qvb a port of another bridge); plug sets MTU 1450 and moves
    qvb to the qbr it creates; the OVSDB step fails: qvb is back on its bridge, MTUs 1500."""
    vif = env.vif("ovs-hybrid.json")
    elsewhere = f"re{uuid.uuid4().hex[:8]}"
    env.leftovers.links.append(elsewhere)
    env.netns.add_bridge(elsewhere)
    env.netns.add_veth(vif.qvb_name, vif.qvo_name)
    env.netns.ip("link", "set", "dev", vif.qvb_name, "master", elsewhere)
    host = env.host(ovsdb_backend)
    before = env.snapshot()
    assert before.links[vif.qvb_name]["master"] == elsewhere
    port_step = DRIVER.plan(vif, instance_uuid=INSTANCE).steps[-1]
    at_failure: list[dict[str, Any]] = []

    def fault(step: Step) -> None:
        if step == port_step:
            at_failure.append(links_snapshot(env.netns))
            raise Injected("injected")

    with pytest.raises(StepFailed), injected(host, fault):
        DRIVER.plug(vif, host, instance_uuid=INSTANCE)

    assert at_failure[0][vif.qvb_name]["master"] == vif.qbr_name
    assert at_failure[0][vif.qvo_name]["mtu"] == 1450
    assert_same(before, env.snapshot())


def test_failed_replug_restores_the_previous_plug(ovsdb_backend: str, env: Env) -> None:
    """A plugged VIF is plugged again with another MTU and VLAN; the OVSDB step fails: the
    devices are back at the old MTU and the port keeps its old tag and identity."""
    vif = env.vif("ovs-hybrid.json")
    host = env.host(ovsdb_backend)
    DRIVER.plug(vif, host, instance_uuid=INSTANCE)
    plugged = env.snapshot()
    data = vif.to_dict()
    data["mtu"], data["network"]["vlan"] = 9000, 200
    changed = Vif.parse(data)
    port_step = DRIVER.plan(changed, instance_uuid=INSTANCE).steps[-1]
    at_failure: list[dict[str, Any]] = []

    def fault(step: Step) -> None:
        if step == port_step:
            at_failure.append(links_snapshot(env.netns))
            raise Injected("injected")

    with pytest.raises(StepFailed), injected(host, fault):
        DRIVER.plug(changed, host, instance_uuid=INSTANCE)

    devices = (vif.qbr_name, vif.qvb_name, vif.qvo_name)
    # (qvo's own MTU is ovs-vswitchd's: it puts back its mtu_request at once, 1450 until the
    # transaction that failed here would have changed it.)
    assert at_failure[0][vif.qbr_name]["mtu"] == at_failure[0][vif.qvb_name]["mtu"] == 9000
    assert_same(plugged, env.snapshot())
    # Without the fault, the same re-plug converges.
    assert not DRIVER.plug(changed, host, instance_uuid=INSTANCE).already_done
    links = links_snapshot(env.netns)
    assert {links[name]["mtu"] for name in devices} == {9000}
    assert env.ovs.get("Port", vif.qvo_name, "tag") == "200"
    assert env.ovs.get("Interface", vif.qvo_name, "mtu_request") == "9000"
    DRIVER.unplug(changed, host)


# --- when undoing fails, and unplug failures ---------------------------------------------------


def test_incomplete_rollback_is_not_reported_as_rolled_back(env: Env,
                                                            mocker: MockerFixture) -> None:
    vif = env.vif("ovs-hybrid.json")
    port_step = DRIVER.plan(vif).steps[-1]
    host = env.host("native")

    def fault(step: Step) -> None:
        if step == port_step:
            mocker.patch.object(Pyroute2Netlink, "delete", autospec=True,
                                side_effect=OSError(errno.EBUSY, "injected"))
            raise Injected("injected")

    with pytest.raises(StepFailed) as raised, injected(host, fault):
        DRIVER.plug(vif, host)

    assert len(raised.value.undo_errors) == 2  # the veth pair and the qbr stayed
    assert "rollback was incomplete" in str(raised.value)
    assert vif.qbr_name in links_snapshot(env.netns)
    assert raised.value.rolled_back is False


@pytest.mark.parametrize("at", ["DeleteOvsPort", "DeleteLink"])
def test_failed_unplug_finishes_when_run_again(at: str, ovsdb_backend: str, env: Env) -> None:
    vif = env.vif("ovs-hybrid.json")
    host = env.host(ovsdb_backend)
    before = env.snapshot()
    DRIVER.plug(vif, host, instance_uuid=INSTANCE)
    target = next(step for step in DRIVER.unplan(vif).steps if type(step).__name__ == at)

    def fault(step: Step) -> None:
        if step == target:
            raise Injected("injected")

    with pytest.raises(StepFailed) as raised, injected(host, fault):
        DRIVER.unplug(vif, host)

    assert raised.value.step == target
    assert raised.value.device == target.device
    assert raised.value.rolled_back is False  # unplug does not roll back: it is run again
    if isinstance(target, DeleteLink):
        assert vif.qvo_name not in env.ovs.ports(env.br_int)  # the OVSDB part was done
    assert vif.qbr_name in links_snapshot(env.netns)

    outcome = DRIVER.unplug(vif, host)

    assert not outcome.already_done
    assert_same(before, env.snapshot())


def test_check_failure_changes_nothing_even_with_create(env: Env) -> None:
    """Checks run before any change: a missing bridge stops a hybrid plug before its qbr."""
    vif = env.vif("ovs-hybrid.json", network={"bridge": "br-none"})
    assert DRIVER.plan(vif).steps[0] == RequireOvsBridge("br-none")
    created = DRIVER.plan(vif, create_ovs_bridges=True).steps[0]
    assert created == EnsureOvsBridge("br-none", "netdev")
    before = env.snapshot()
    with pytest.raises(HostError, match="br-none"):
        DRIVER.plug(vif, env.host("vsctl"))
    assert_same(before, env.snapshot())

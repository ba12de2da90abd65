"""``vifplug host apply --guests=move`` with a real guest running: a whole host moved from Linux
bridges to OVS and back in one rolled-back step (tests/fixtures/transition.py).

The host's NIC ``u1`` is a veth into a "physical switch" segment whose peer pings the guest
every 20 ms (tests/fixtures/pinger.py). The map at the qemu hook's path changes ``red`` from
``legacy`` (Linux bridge ``red`` holding ``u1``) to ``ovs`` (``br-u1``, ``u1`` its uplink) and
back; each time ``host apply --guests=move`` builds the new switch, moves ``u1`` to it, moves the
guest and removes the old switch. ``--guests=move`` moves it live by the hybrid path (its own
qbr/qvb/qvo plugged on br-u1, the TAP re-pointed onto the qbr by a device update; back, onto
red, and the hybrid path removed); ``--guests=restore`` by a save + restore onto the OVS
virtualport (libvirt cannot re-point a TAP between a Linux bridge and OVS live).
After each: the peer's pings are answered again (the number lost is reported, never asserted),
libvirt's live XML names the new switch, the old switch is gone, and a second apply finds
nothing to do. ``--guests=refuse`` (the default) exits 2 naming the guest and changes nothing.
At the end the guest is destroyed (with ``--guests=move``, on OVS once more: the qemu hook's
``release`` removes its hybrid path) and an apply of an empty map leaves nothing of vifplug.

A foreign device in the way of the new bridge (a Linux bridge ``br-u1`` that is not vifplug's)
is refused before anything changes (exit 2), the guest answering throughout. Failure
halfway: the new switch built, the uplink and the guest moved to it, removing the old Linux
bridge (the finish) fails (a failure injected there); the finish is rolled back, the old map
is put back at the hook's path, the guest is moved back onto the Linux bridge and keeps
answering, the OVS bridge built is removed, and vifplug's record is as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.fixtures.guest import GuestImage
from tests.fixtures.pinger import Pinger
from tests.fixtures.plugin import entered
from tests.fixtures.transition import (
    GUEST_IP,
    INTERFACE_ID,
    LEGACY,
    MAC,
    OVS,
    TransitionHost,
    transition_host,
)

pytestmark = pytest.mark.root

GUEST_DEADLINE = 40.0  # boot and first replies; only bounds a failure
RESUME_DEADLINE = 30.0


@pytest.fixture
def site(_no_leaks: None, image: GuestImage, tmp_path: Path) -> Iterator[TransitionHost]:
    yield from entered(transition_host(tmp_path))


def live_interface(dom: Any) -> etree._Element:
    (iface,) = etree.fromstring(dom.XMLDesc(0)).iterfind("devices/interface")
    return iface


def assert_on_ovs(site: TransitionHost, dom: Any) -> None:
    iface = live_interface(dom)
    assert iface.find("source").get("bridge") == "br-u1"
    assert iface.find("virtualport").get("type") == "openvswitch"
    assert iface.find("virtualport/parameters").get("interfaceid") == INTERFACE_ID
    assert [t.get("id") for t in iface.iterfind("vlan/tag")] == ["4094"]
    assert iface.find("mac").get("address") == MAC
    assert site.ovs.vsctl("port-to-br", site.tap) == "br-u1"
    assert site.ovs.vsctl("port-to-br", "u1") == "br-u1"
    assert site.netns.link("red") is None


QBR, QVB, QVO = (f"{prefix}{INTERFACE_ID[:11]}" for prefix in ("qbr", "qvb", "qvo"))


def assert_on_ovs_hybrid(site: TransitionHost, dom: Any) -> None:
    iface = live_interface(dom)
    assert iface.find("source").get("bridge") == QBR
    assert iface.find("virtualport") is None
    assert iface.find("vlan") is None
    assert iface.find("mac").get("address") == MAC
    assert site.netns.link(site.tap)["master"] == QBR  # type: ignore[index]
    assert site.netns.link(QVB)["master"] == QBR  # type: ignore[index]
    assert site.ovs.vsctl("port-to-br", QVO) == "br-u1"
    assert site.ovs.get("Port", QVO, "tag") == "4094"
    ids = site.ovs.vsctl("get", "Interface", QVO, "external_ids")
    for pair in (f'iface-id="{INTERFACE_ID}"', f'attached-mac="{MAC}"',
                 f'vm-uuid="{dom.UUIDString()}"'):
        assert pair in ids
    assert site.ovs.vsctl("port-to-br", "u1") == "br-u1"
    assert site.netns.link("red") is None


def assert_on_red(site: TransitionHost, dom: Any) -> None:
    iface = live_interface(dom)
    assert iface.find("source").get("bridge") == "red"
    assert iface.find("virtualport") is None
    assert iface.find("vlan") is None
    assert site.netns.link(site.tap)["master"] == "red"  # type: ignore[index]
    assert site.netns.link("u1")["master"] == "red"  # type: ignore[index]
    assert "br-u1" not in site.ovs.vsctl("list-br").split()
    assert all(site.netns.link(name) is None for name in (QBR, QVB, QVO))


@pytest.mark.parametrize("how", ["move", "restore"])
def test_legacy_to_ovs_and_back_with_a_running_guest(
        site: TransitionHost, image: GuestImage, tmp_path: Path,
        report: Callable[[str], None], how: str) -> None:
    code, out, err = site.apply(LEGACY)
    assert code == 0, out + err
    lost = []
    with site.guest(image, tmp_path / "console") as started, \
            Pinger(site.segment.netns, GUEST_IP, interval=0.02) as pinger:
        pinger.wait_reply(timeout=GUEST_DEADLINE)
        assert_on_red(site, started)

        # refuse (the default): exit 2 naming the guest, nothing changed
        code, out, err = site.apply(OVS)
        assert code == 2, out + err
        assert f"vp-tr-guest ({MAC} on red)" in err
        assert_on_red(site, started)

        on_ovs = assert_on_ovs_hybrid if how == "move" else assert_on_ovs
        for text, where, check in ((OVS, "legacy -> ovs", on_ovs),
                                   (LEGACY, "ovs -> legacy", assert_on_red)):
            mark = pinger.mark()
            code, out, err = site.apply(text, "--guests", how)
            assert code == 0, out + err
            assert "moved: vp-tr-guest" in out
            check(site, site.conn.lookupByName("vp-tr-guest"))
            pinger.wait_reply(after=pinger.mark(), timeout=RESUME_DEADLINE)
            lost.append((where, pinger.since(mark), out))
            code, out, err = site.apply(text, "--guests", how)
            assert (code, err) == (0, ""), out + err
            assert "nothing to do" in out
        assert list(Path("/var/tmp").glob("vifplug-move-*/vp-tr-guest.*.save")) == []
        if how == "move":  # to OVS once more: destroyed there, the hook removes its hybrid path
            code, out, err = site.apply(OVS, "--guests", how)
            assert code == 0, out + err
            assert_on_ovs_hybrid(site, site.conn.lookupByName("vp-tr-guest"))
    assert all(site.netns.link(name) is None for name in (QBR, QVB, QVO))
    if how == "move":
        assert QVO not in site.ovs.vsctl("list-ports", "br-u1").split()
    # destroyed: an empty map takes vifplug's switch away, nothing of it is left
    code, out, err = site.apply("")
    assert code == 0, out + err
    assert site.netns.link("red") is None
    assert site.netns.link(site.tap) is None
    assert site.ovs.vsctl("list-br") == ""
    assert site.netns.link("u1").get("master") is None  # type: ignore[union-attr]
    for where, gap, said in lost:
        phases = "; ".join(line.strip() for line in said.splitlines()
                           if line.startswith(("  built:", "  uplink moved:", "  moved ",
                                               "  finished:")))
        report(f"--guests={how} {where}: {gap.lost} of {gap.sent} pings lost (20 ms), outage "
               f"{gap.outage:.3f} s ({phases})")


def test_a_transition_failing_halfway_puts_everything_back(
        site: TransitionHost, image: GuestImage, tmp_path: Path,
        report: Callable[[str], None]) -> None:
    from vifplug.host import Host
    from vifplug.host.faults import injected
    from vifplug.host.network import DeviceRecord
    from vifplug.host.transition import TransitionError, transition
    from vifplug.hostnet import DeleteOwnedLink
    from vifplug.netmap import load_network_map
    from vifplug.plan import Step

    code, out, err = site.apply(LEGACY)
    assert code == 0, out + err
    record_before = site.record.read_text()

    def fault(step: Step) -> None:
        if isinstance(step, DeleteOwnedLink):
            raise RuntimeError(f"injected before {step.device}")

    with site.guest(image, tmp_path / "console"), \
            Pinger(site.segment.netns, GUEST_IP, interval=0.02) as pinger:
        pinger.wait_reply(timeout=GUEST_DEADLINE)
        # a foreign device in the way of the new bridge: refused before anything changes
        site.netns.add_bridge("br-u1")
        code, out, err = site.apply(OVS, "--guests", "move")
        assert code == 2, out + err
        assert "br-u1 exists on this host as a bridge device, not vifplug's" in err
        assert_on_red(site, site.conn.lookupByName("vp-tr-guest"))
        assert site.record.read_text() == record_before
        site.netns.delete_link("br-u1")
        pinger.wait_reply(after=pinger.mark(), timeout=RESUME_DEADLINE)
        # failing halfway: the uplink and the guest moved, the finish fails
        site.networks.write_text(OVS)
        mark = pinger.mark()
        with Host(netns=site.netns.name, ovsdb=site.ovs.db, ovsdb_backend="vsctl") as host, \
                injected(host, fault), pytest.raises(TransitionError) as caught:
            transition(load_network_map(site.networks), host,
                       DeviceRecord(site.record, host.scope), site.conn,
                       datapath_type="netdev")
        message = str(caught.value)
        assert "finishing (uplink, old switch) failed" in message
        assert "injected before red" in message
        assert "the guests moved back" in message
        assert "the new switch's build undone" in message
        assert "NOT" not in message
        assert_on_red(site, site.conn.lookupByName("vp-tr-guest"))
        assert site.networks.read_text() == LEGACY
        assert (site.networks.parent / "networks.toml.rejected").read_text() == OVS
        assert site.record.read_text() == record_before
        pinger.wait_reply(after=pinger.mark(), timeout=RESUME_DEADLINE)
        gap = pinger.since(mark)
    report(f"failed halfway and rolled back: {gap.lost} of {gap.sent} pings lost, outage "
           f"{gap.outage:.3f} s")

"""``vifplug host apply`` on a real kernel and a real OVS (userspace datapath) in a netns.

veth pairs stand in for NICs (``u1`` … in the host netns; their peers ``u1p`` … are the
"switch side"). Each test gets a fresh netns and a private OVS; the CLI runs with ``--netns``,
``--ovsdb``, ``--datapath-type netdev`` and a record file in the test's tmp dir.

- every map shape converges from empty, and again from a drifted host (a bridge missing, an
  extra uplink, a wrong MTU, a wrong tag), and a second apply changes nothing;
- foreign devices and a foreign OVS bridge are untouched, also when vifplug's go;
- a device in the way that is not vifplug's: exit 2, the host unchanged;
- a failure injected at every step (from empty, and in a legacy → ovs transition) leaves the
  host snapshot and the record exactly as before; an apply SIGKILLed mid-way is finished by
  the next one;
- traffic: two VLAN networks on one uplink reach their peers beyond it and not each other; a
  guest on a Linux bridge reaches a peer beyond its uplink; two untagged networks on two
  uplinks (two OVS bridges) are kept apart.

The kernel here has no 8021q (VLAN devices) nor bonding: the legacy VLAN and bond shapes skip
with that reason (their plans are unit-tested in tests/unit/test_hostnet.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures import Netns, PrivateOvs, Unavailable
from tests.fixtures.snapshot import HostSnapshot, host_snapshot
from vifplug.cli import main
from vifplug.host import Host, StepFailed
from vifplug.host.faults import injected
from vifplug.host.network import DeviceRecord, apply_host, plan_for_host
from vifplug.netmap import load_network_map
from vifplug.plan import Step


class Injected(RuntimeError):
    """The failure the tests inject."""


@dataclass
class Site:
    netns: Netns
    ovs: PrivateOvs
    tmp: Path

    @property
    def record(self) -> Path:
        return self.tmp / "host-devices.json"

    def map(self, text: str) -> Path:
        path = self.tmp / "networks.toml"
        path.write_text(text)
        return path

    def cli(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main([*args, "--netns", self.netns.name, "--ovsdb", self.ovs.db,
                     "--record", str(self.record)], out, err)
        return code, out.getvalue(), err.getvalue()

    def apply(self, text: str, *, expect: int = 0) -> str:
        code, out, err = self.cli("host", "apply", "--networks", str(self.map(text)),
                                  "--datapath-type", "netdev")
        assert code == expect, out + err
        return out + err

    def converged(self, text: str) -> str:
        """Apply, then apply again: the second changes nothing."""
        first = self.apply(text)
        before = self.snapshot()
        second = self.apply(text)
        assert "nothing to do" in second, second
        assert self.snapshot() == before
        return first

    def snapshot(self) -> HostSnapshot:
        return host_snapshot(self.netns, self.ovs)

    def nic(self, *names: str, mtu: int | None = None) -> None:
        for name in names:
            self.netns.add_veth(name, name + "p")
            if mtu is not None:
                self.netns.ip("link", "set", "dev", name + "p", "mtu", str(mtu))

    def host(self) -> Host:
        return Host(netns=self.netns.name, ovsdb=self.ovs.db, ovsdb_backend="vsctl")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    try:
        with Netns() as netns, PrivateOvs(netns) as ovs:
            yield Site(netns, ovs, tmp_path)
    except Unavailable as exc:
        pytest.skip(str(exc))


def kernel_lacks(kind: str) -> str | None:
    """Why ``ip link add … type KIND`` fails here (None: it works)."""
    with Netns() as probe:
        args = ["link", "add", "name", "probe0", "type", kind]
        if kind == "vlan":
            probe.ip("link", "add", "name", "probe1", "type", "veth", "peer", "name", "probe2")
            args = ["link", "add", "link", "probe1", "name", "probe0", "type", "vlan", "id", "5"]
        result = subprocess.run(["ip", "-n", probe.name, *args], capture_output=True, text=True,
                                check=False)
    if result.returncode == 0:
        return None
    return f"this kernel cannot make {kind} devices ({result.stderr.strip()})"


OVS_MAP = """
[networks.red]
switch = "ovs"
nic = "u1"
mtu = 9000

[networks.blue]
switch = "ovs"
nic = "u1"
vlan = 100

[networks.green]
switch = "ovs"
nic = "u1"
vlan = 200

[networks.storage]
switch = "ovs"
bond = {name = "bond0", nics = ["u2", "u3"], mode = "balance-slb"}
vlan = 300

[networks.internal]
switch = "ovs"
bridge = "br-in"
vlan = 5
"""

LEGACY_MAP = """
[networks.red]
switch = "legacy"
nic = "u1"
mtu = 9000

[networks.lan]
switch = "legacy"
bridge = "lan"
"""


def port(site: Site, name: str, column: str) -> str:
    return site.ovs.get("Port", name, column)


# --- OVS ---------------------------------------------------------------------------------------


def test_ovs_map_converges_from_empty(site: Site) -> None:
    site.nic("u1", "u2", "u3", mtu=9000)
    out = site.converged(OVS_MAP)
    assert "ensure OVS bridge br-u1" in out
    ovs = site.ovs
    assert sorted(ovs.vsctl("list-br").split()) == ["br-bond0", "br-in", "br-u1"]
    for bridge in ("br-bond0", "br-in", "br-u1"):
        assert ovs.get("Bridge", bridge, "external_ids:vifplug-owner") == "host"
        assert ovs.get("Bridge", bridge, "datapath_type") == "netdev"
    assert ovs.ports("br-u1") == ["u1"]
    assert port(site, "u1", "trunks") == "[100, 200]"
    assert port(site, "u1", "tag") == "4094"
    assert port(site, "u1", "vlan_mode") == "native-untagged"
    assert port(site, "u1", "external_ids:vifplug-owner") == "host"
    assert ovs.get("Interface", "u1", "mtu_request") == "9000"
    assert ovs.get("Interface", "br-u1", "mtu_request") == "9000"
    assert ovs.ports("br-bond0") == ["bond0"]
    assert port(site, "bond0", "bond_mode") == "balance-slb"
    assert port(site, "bond0", "trunks") == "[300]"
    assert port(site, "bond0", "vlan_mode") == "trunk"
    interfaces = ovs.vsctl("--columns=name", "find", "Interface", "name=u2") + \
        ovs.vsctl("--columns=name", "find", "Interface", "name=u3")
    assert "u2" in interfaces
    assert "u3" in interfaces
    assert ovs.ports("br-in") == []
    assert not site.record.exists() or json.loads(site.record.read_text())["scopes"] == {}


@pytest.mark.parametrize("drift", ["bridge-missing", "wrong-tag", "wrong-mtu", "extra-uplink",
                                   "wrong-bond-mode"])
def test_ovs_map_converges_from_drift(site: Site, drift: str) -> None:
    site.nic("u1", "u2", "u3", "u4", mtu=9000)
    site.converged(OVS_MAP)
    ovs = site.ovs
    text = OVS_MAP
    if drift == "bridge-missing":
        ovs.vsctl("del-br", "br-u1")
    elif drift == "wrong-tag":
        ovs.vsctl("set", "Port", "u1", "tag=7", "trunks=100")
    elif drift == "wrong-mtu":
        ovs.vsctl("set", "Interface", "u1", "mtu_request=1500")
    elif drift == "extra-uplink":  # the map moves red/blue/green to u4: u1's port goes
        text = OVS_MAP.replace('"u1"', '"u4"')
    else:
        ovs.vsctl("set", "Port", "bond0", "bond_mode=active-backup")
    site.converged(text)
    uplink = "u4" if drift == "extra-uplink" else "u1"
    assert ovs.ports(f"br-{uplink}") == [uplink]
    assert port(site, uplink, "trunks") == "[100, 200]"
    assert port(site, uplink, "tag") == "4094"
    assert ovs.get("Interface", uplink, "mtu_request") == "9000"
    if drift == "extra-uplink":
        assert "br-u1" not in ovs.vsctl("list-br").split()  # vifplug's, no network's any more
    assert port(site, "bond0", "bond_mode") == "balance-slb"


def test_foreign_ovs_bridge_and_devices_untouched(site: Site) -> None:
    site.nic("u1", "u2", "u3", "f1")
    site.ovs.add_bridge("br-foreign")
    site.ovs.vsctl("add-port", "br-foreign", "f1")
    site.netns.add_bridge("fbr")
    site.nic("f2")
    site.netns.ip("link", "set", "dev", "f2", "master", "fbr")
    before = site.snapshot()
    site.converged(OVS_MAP)
    site.converged("")  # every network gone: vifplug's bridges go, nothing else
    after = site.snapshot()
    uplinks = {"u1", "u2", "u3"}  # released (they keep the MTU the map gave them)
    for snapshot in (before, after):
        for name in uplinks:
            snapshot.links.pop(name)
    assert after == before, "\n".join(after.diff(before))


def test_foreign_ovs_bridge_in_the_way_is_refused(site: Site) -> None:
    site.nic("u1", "u2", "u3")
    site.ovs.add_bridge("br-u1")
    before = site.snapshot()
    out = site.apply(OVS_MAP, expect=2)
    assert "networks.toml:" in out
    assert "OVS bridge br-u1 exists and is not vifplug's" in out
    assert site.snapshot() == before


def test_mixed_map_is_refused(site: Site) -> None:
    site.nic("u1", "u2", "u3")
    before = site.snapshot()
    out = site.apply(OVS_MAP + '\n[networks.pink]\nswitch = "legacy"\nbridge = "pink"\n', expect=2)
    assert "mixes switch types: legacy: pink; ovs/ovn: blue, green, internal, red, storage" in out
    assert site.snapshot() == before


def test_dry_run_prints_the_plan_and_changes_nothing(site: Site) -> None:
    site.nic("u1", "u2", "u3")
    before = site.snapshot()
    code, out, err = site.cli("host", "apply", "--dry-run", "--networks",
                              str(site.map(OVS_MAP)))
    assert code == 0, err
    assert out.startswith("host networks (")
    assert "  1. " in out
    assert "ensure OVS bond bond0 (balance-slb, lacp off: u2, u3) on br-bond0" in out
    assert site.snapshot() == before


def test_host_show_names_the_drift(site: Site) -> None:
    site.nic("u1", "u2", "u3")
    site.converged(OVS_MAP)
    site.ovs.vsctl("set", "Port", "u1", "tag=7")
    code, out, err = site.cli("host", "show", "--networks", str(site.map(OVS_MAP)))
    assert code == 0, err
    assert "drift (what host apply would change):" in out
    assert "  red: ensure OVS port u1 on br-u1" in out
    site.apply(OVS_MAP)
    code, out, err = site.cli("host", "show", "--networks", str(site.map(OVS_MAP)))
    assert "drift: none" in out


# --- Linux bridges ------------------------------------------------------------------------------


def test_legacy_map_converges_and_drifts_back(site: Site) -> None:
    site.nic("u1", "u4", mtu=9000)
    site.converged(LEGACY_MAP)
    red = site.netns.link("red")
    assert red is not None
    assert red["linkinfo"]["info_kind"] == "bridge"
    assert red["mtu"] == 9000
    assert site.netns.link("u1")["master"] == "red"  # type: ignore[index]
    assert site.netns.link("u1")["mtu"] == 9000  # type: ignore[index]
    record = json.loads(site.record.read_text())["scopes"][f"netns-{site.netns.name}"]
    assert record["devices"] == {"lan": {"kind": "bridge", "network": "lan"},
                                 "red": {"kind": "bridge", "network": "red"}}
    assert record["ports"] == {"u1": "red"}
    site.netns.ip("link", "delete", "dev", "red")  # a bridge missing
    site.converged(LEGACY_MAP)
    site.netns.ip("link", "set", "dev", "red", "mtu", "1500")  # a wrong MTU
    site.converged(LEGACY_MAP)
    assert site.netns.link("red")["mtu"] == 9000  # type: ignore[index]
    site.converged(LEGACY_MAP.replace('"u1"', '"u4"'))  # the uplink moves: u1 released
    assert site.netns.link("u1").get("master") is None  # type: ignore[union-attr]
    assert site.netns.link("u4")["master"] == "red"  # type: ignore[index]


def test_legacy_foreign_device_with_a_bridge_name_is_refused(site: Site) -> None:
    site.nic("u1", "red")  # a veth called red: not vifplug's
    before = site.snapshot()
    out = site.apply(LEGACY_MAP, expect=2)
    assert "networks.red.bridge: red exists on this host and is not vifplug's" in out
    assert site.snapshot() == before


def test_legacy_uplink_less_bridge_of_an_operator_is_used_not_owned(site: Site) -> None:
    site.nic("u1")
    site.netns.add_bridge("lan", mtu=1400)
    site.converged(LEGACY_MAP)
    site.converged("")
    assert site.netns.link("lan")["mtu"] == 1400  # type: ignore[index]
    assert site.netns.link("red") is None


@pytest.mark.parametrize("kind", ["vlan", "bond"])
def test_legacy_vlan_and_bond_shapes(site: Site, kind: str) -> None:
    reason = kernel_lacks(kind)
    if reason is not None:
        pytest.skip(reason)
    site.nic("u1", "u2")
    text = ('[networks.red]\nswitch = "legacy"\nnic = "u1"\nvlan = 100\n' if kind == "vlan" else
            '[networks.red]\nswitch = "legacy"\nbond = {name = "bond0", nics = ["u1", "u2"]}\n')
    site.converged(text)
    port_name = "u1.100" if kind == "vlan" else "bond0"
    assert site.netns.link(port_name)["master"] == "red"  # type: ignore[index]
    site.converged("")
    assert site.netns.link(port_name) is None


# --- rollback ---------------------------------------------------------------------------------


def steps_of(site: Site, text: str) -> list[Step]:
    host_map = load_network_map(site.map(text))
    with site.host() as host:
        plan = plan_for_host(host_map, host, DeviceRecord(site.record, host.scope),
                             datapath_type="netdev")
    return list(plan.steps)


def fail_at_each_step(site: Site, text: str) -> int:
    """Apply ``text`` with a failure injected before each of its steps in turn: each time the
    host and the record are exactly as before, and the error names the step and device."""
    steps = steps_of(site, text)
    host_map = load_network_map(site.map(text))
    before = site.snapshot()
    record_before = site.record.read_text() if site.record.exists() else None
    for target in steps:
        def fault(step: Step, target: Step = target) -> None:
            if step == target:
                raise Injected(f"injected before {step.device}")

        with site.host() as host, injected(host, fault), pytest.raises(StepFailed) as failed:
            apply_host(host_map, host, DeviceRecord(site.record, host.scope),
                       datapath_type="netdev")
        assert failed.value.rolled_back, failed.value
        assert str(target) in str(failed.value) or "steps in one request" in str(failed.value)
        after = site.snapshot()
        assert after == before, f"{target}:\n" + "\n".join(after.diff(before))
        record_after = site.record.read_text() if site.record.exists() else None
        if record_before is None:
            assert record_after is None or json.loads(record_after)["scopes"] == {}
        else:
            assert record_after == record_before
    return len(steps)


@pytest.mark.parametrize("shape", ["ovs", "legacy"])
def test_failure_at_every_step_from_empty_is_rolled_back(site: Site, shape: str) -> None:
    site.nic("u1", "u2", "u3")
    text = OVS_MAP if shape == "ovs" else LEGACY_MAP
    assert fail_at_each_step(site, text) >= 4
    site.converged(text)  # and then it applies


def test_failure_at_every_step_from_ovs_to_legacy_is_rolled_back(site: Site) -> None:
    """The other direction (the userspace datapath lets a NIC join a Linux bridge while it is
    still an OVS port; the kernel datapath does not: issue 11, item 5)."""
    site.nic("u1", "u2", "u3")
    site.converged(OVS_MAP)
    assert fail_at_each_step(site, LEGACY_MAP) >= 4
    site.converged(LEGACY_MAP)
    assert site.ovs.vsctl("list-br") == ""
    assert site.netns.link("u1")["master"] == "red"  # type: ignore[index]


def test_failure_at_every_step_of_a_transition_is_rolled_back(site: Site) -> None:
    site.nic("u1", "u4", mtu=9000)
    site.converged(LEGACY_MAP)
    transition = '[networks.red]\nswitch = "ovs"\nnic = "u1"\nmtu = 9000\n' \
                 '[networks.lan]\nswitch = "ovs"\nbridge = "lan"\n'
    count = fail_at_each_step(site, transition)
    assert count >= 3  # delete the bridges, the OVS bridges and the uplink
    site.converged(transition)
    assert site.netns.link("red") is None
    assert site.ovs.ports("br-u1") == ["u1"]


# --- traffic ----------------------------------------------------------------------------------


def test_two_vlans_on_one_uplink_reach_their_peers_not_each_other(site: Site) -> None:
    """Guests on VLAN 100 and 200 (access ports of br-u1) reach, through the uplink trunk, the
    peer on their VLAN beyond it: a "physical switch" (an OVS bridge in another namespace whose
    trunk port is the uplink's far end, an access port per VLAN); all four in one subnet, so
    only the VLANs keep them apart."""
    site.nic("u1")
    site.converged('[networks.blue]\nswitch = "ovs"\nnic = "u1"\nvlan = 100\n'
                   '[networks.green]\nswitch = "ovs"\nnic = "u1"\nvlan = 200\n')
    with Netns() as switch, PrivateOvs(switch) as physical:
        site.netns.ip("link", "set", "dev", "u1p", "netns", switch.name)
        switch.ip("link", "set", "dev", "u1p", "up")
        physical.add_bridge("sw")
        physical.vsctl("add-port", "sw", "u1p", "--", "set", "Port", "u1p", "trunks=100,200")
        here, there = (["ovs-vsctl", f"--db={ovs.db}"] for ovs in (site.ovs, physical))
        try:
            with stand_ins([
                    ("p100", "198.51.100.11", switch, [*there, "add-port", "sw", "p100",
                                                       "tag=100"]),
                    ("p200", "198.51.100.12", switch, [*there, "add-port", "sw", "p200",
                                                       "tag=200"]),
                    ("g100", "198.51.100.1", site.netns, [*here, "add-port", "br-u1", "g100",
                                                          "tag=100"]),
                    ("g200", "198.51.100.2", site.netns, [*here, "add-port", "br-u1", "g200",
                                                          "tag=200"])]) as ends:
                assert pings(ends, "g100", "198.51.100.11")
                assert pings(ends, "g200", "198.51.100.12")
                assert not pings(ends, "g100", "198.51.100.12")
                assert not pings(ends, "g100", "198.51.100.2")
        finally:
            site.ovs.vsctl("--if-exists", "del-port", "g100", "--", "--if-exists", "del-port",
                           "g200")


# --- a crash mid-apply --------------------------------------------------------------------------

KILLER = """
import os, signal, sys
from pathlib import Path
from vifplug.host import Host
from vifplug.host.faults import injected
from vifplug.host.network import DeviceRecord, apply_host
from vifplug.netmap import load_network_map

netns, db, networks, record, at = sys.argv[1:6]
seen = []

def fault(step):
    seen.append(step)
    if len(seen) == int(at):
        os.kill(os.getpid(), signal.SIGKILL)

host = Host(netns=netns, ovsdb=db, ovsdb_backend="vsctl")
with injected(host, fault):
    apply_host(load_network_map(networks), host, DeviceRecord(Path(record), host.scope),
               datapath_type="netdev")
print("not killed: only", len(seen), "steps")
"""


def killed_at(site: Site, text: str, at: int) -> None:
    """Run an apply of ``text`` in a child process SIGKILLed just before its ``at``-th step."""
    result = subprocess.run(
        [sys.executable, "-c", KILLER, site.netns.name, site.ovs.db, str(site.map(text)),
         str(site.record), str(at)], capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert result.returncode == -signal.SIGKILL, result.stdout + result.stderr


@pytest.mark.parametrize("at", [2, 4, 6])
def test_sigkill_mid_apply_then_apply_converges(site: Site, at: int) -> None:
    """A legacy host moving to OVS, killed before its 2nd, 4th or 6th step (link steps done and
    not undone, the OVSDB transaction not sent): the next apply converges, twice."""
    site.nic("u1", "u2", "u3", "u4", mtu=9000)
    site.converged(LEGACY_MAP)
    killed_at(site, OVS_MAP.replace("u1", "u4"), at)
    site.converged(OVS_MAP.replace("u1", "u4"))
    assert site.netns.link("red") is None
    assert site.ovs.ports("br-u4") == ["u4"]
    assert json.loads(site.record.read_text())["scopes"] == {}


# --- more traffic -------------------------------------------------------------------------------


@contextlib.contextmanager
def stand_ins(attach: list[tuple[str, str, Netns, list[str]]]) -> Iterator[dict[str, Netns]]:
    """A namespace per stand-in (guest or peer): ``(name, address, where its host end is,
    argv that attaches the host end there)``; a veth pair each, the far end in the stand-in's
    namespace with the address. All removed on exit."""
    ends: dict[str, Netns] = {}
    with contextlib.ExitStack() as stack:
        for name, address, side, attach_argv in attach:
            holder = stack.enter_context(Netns())
            ends[name] = holder
            side.ip("link", "add", "name", name, "type", "veth", "peer", "name", name + "x")
            stack.callback(side.delete_link, name)
            side.ip("link", "set", "dev", name + "x", "netns", holder.name)
            side.ip("link", "set", "dev", name, "up")
            if attach_argv:
                subprocess.run(attach_argv, check=True, capture_output=True)
            holder.ip("address", "add", f"{address}/24", "dev", name + "x")
            holder.ip("link", "set", "dev", name + "x", "up")
            holder.run("ethtool", "-K", name + "x", "tx", "off", check=False)
        yield ends


def pings(ends: dict[str, Netns], source: str, address: str) -> bool:
    if shutil.which("ping") is None:
        pytest.skip("no ping here (apt-get install iputils-ping; tests/run-all.sh does)")
    return ends[source].run("ping", "-c", "2", "-i", "0.2", "-W", "1", address,
                            check=False).returncode == 0


def test_legacy_guest_reaches_a_peer_beyond_the_uplink(site: Site) -> None:
    site.nic("u1")
    site.converged('[networks.red]\nswitch = "legacy"\nnic = "u1"\n')
    with Netns() as peer:
        site.netns.ip("link", "set", "dev", "u1p", "netns", peer.name)
        peer.ip("address", "add", "198.51.100.11/24", "dev", "u1p")
        peer.ip("link", "set", "dev", "u1p", "up")
        with stand_ins([("g1", "198.51.100.1", site.netns,
                         ["ip", "-n", site.netns.name, "link", "set", "dev", "g1", "master",
                          "red"])]) as ends:
            assert pings(ends, "g1", "198.51.100.11")


def test_two_untagged_networks_on_two_uplinks_are_kept_apart(site: Site) -> None:
    """The multi-bridge rule: each untagged network on its uplink's own bridge (both on native
    VLAN 4094 inside it): a guest reaches its own peer, not the other network."""
    site.nic("u1", "u2")
    site.converged('[networks.red]\nswitch = "ovs"\nnic = "u1"\n'
                   '[networks.yellow]\nswitch = "ovs"\nnic = "u2"\n')
    assert port(site, "u1", "tag") == port(site, "u2", "tag") == "4094"
    with Netns() as peer1, Netns() as peer2:
        for uplink, peer, address in (("u1p", peer1, "198.51.100.11"),
                                      ("u2p", peer2, "198.51.100.12")):
            site.netns.ip("link", "set", "dev", uplink, "netns", peer.name)
            peer.ip("address", "add", f"{address}/24", "dev", uplink)
            peer.ip("link", "set", "dev", uplink, "up")
        vsctl = ["ovs-vsctl", f"--db={site.ovs.db}"]
        with stand_ins([
                ("g1", "198.51.100.1", site.netns, [*vsctl, "add-port", "br-u1", "g1", "tag=4094"]),
                ("g2", "198.51.100.2", site.netns, [*vsctl, "add-port", "br-u2", "g2",
                                                    "tag=4094"])]) as ends:
            try:
                assert pings(ends, "g1", "198.51.100.11")
                assert pings(ends, "g2", "198.51.100.12")
                assert not pings(ends, "g1", "198.51.100.12")
                assert not pings(ends, "g1", "198.51.100.2")
            finally:
                site.ovs.vsctl("--if-exists", "del-port", "g1", "--", "--if-exists", "del-port",
                               "g2")


# --- priority lists: every option is built ----------------------------------------------------

OPTIONS_MAP = """
allow_mixed = true

[[networks.red.options]]
switch = "direct"
mode = "passthrough"
interfaces = ["u5"]

[[networks.red.options]]
switch = "ovs"
nic = "u1"
vlan = 100

[[networks.red.options]]
switch = "legacy"
bridge = "vp-red"
"""


def test_every_option_of_a_priority_list_is_built(site: Site) -> None:
    """A network listing a pool, an OVS uplink with VLAN 100 and a Linux bridge: host apply
    builds the OVS bridge and the Linux bridge (a guest may get either), leaves the pool NIC
    alone (macvtap needs no host side), records each under its option, and converges."""
    site.nic("u1", "u5")
    out = site.converged(OPTIONS_MAP)
    assert "ensure OVS bridge br-u1" in out
    assert site.ovs.ports("br-u1") == ["u1"]
    assert port(site, "u1", "trunks") == "[100]"
    bridge = site.netns.link("vp-red")
    assert bridge is not None
    assert bridge["linkinfo"]["info_kind"] == "bridge"
    assert site.netns.link("u5").get("master") is None  # type: ignore[union-attr]
    record = json.loads(site.record.read_text())["scopes"]
    (scope,) = record.values()
    assert scope["devices"] == {"vp-red": {"kind": "bridge", "network": "red.options[2]"}}

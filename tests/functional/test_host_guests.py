"""``vifplug host apply --guests=refuse`` on a real kernel and OVS (userspace datapath) in a
netns, libvirt played by its test driver (a node file with a running guest on ``red``): a map
that moves ``red`` to another switch exits 2 naming the guest, its MAC and network, and
changes nothing; a map that moves nothing, or a host where libvirt is not reachable, applies.
(The moves themselves, with a real guest: tests/integration/test_switch_transition.py.)"""

from __future__ import annotations

import json
from pathlib import Path

from tests.functional.test_host_apply import Site, site  # noqa: F401 - the fixture

LEGACY = '[networks.red]\nswitch = "legacy"\nnic = "u1"\n'
OVS = '[networks.red]\nswitch = "ovs"\nnic = "u1"\n'
MAC = "fa:16:3e:00:00:11"


def node(tmp: Path, bridge: str) -> str:
    """A test:/// URI whose node runs guest ``web1`` with one interface on ``bridge``."""
    path = tmp / "node.xml"
    path.write_text(
        "<node><domain type='test'><name>web1</name><memory>65536</memory>"
        "<os><type>hvm</type></os><devices><interface type='bridge'>"
        f"<mac address='{MAC}'/><source bridge='{bridge}'/></interface></devices></domain>"
        "</node>")
    return f"test://{path}"


def test_refuse_names_the_guest_and_changes_nothing(site: Site) -> None:  # noqa: F811
    site.nic("u1")
    site.apply(LEGACY)
    applied = json.loads(site.record.read_text())["applied"][f"netns-{site.netns.name}"]
    assert applied["text"] == LEGACY
    before = site.snapshot()
    uri = node(site.tmp, "red")
    for extra in ((), ("--guests", "refuse")):
        code, out, err = site.cli("host", "apply", "--networks", str(site.map(OVS)),
                                  "--datapath-type", "netdev", "--connect", uri, *extra)
        assert code == 2, out + err
        assert err == (f"{site.tmp}/networks.toml: 1 running guest(s) on networks whose switch "
                       f"changes: web1 ({MAC} on red); stop or migrate them, or move them with "
                       "--guests=move (nothing was changed)\n")
        assert site.snapshot() == before
    # the record still says the host runs the legacy map
    assert json.loads(site.record.read_text())["applied"][f"netns-{site.netns.name}"][
        "text"] == LEGACY
    # nothing moves: no guest is asked about, the apply finds nothing to do
    code, out, err = site.cli("host", "apply", "--networks", str(site.map(LEGACY)),
                              "--connect", uri)
    assert (code, err) == (0, ""), out + err
    assert "nothing to do" in out


def test_refuse_lets_guests_on_other_switches_be(site: Site) -> None:  # noqa: F811
    site.nic("u1")
    site.apply(LEGACY)
    code, out, err = site.cli("host", "apply", "--networks", str(site.map(OVS)),
                              "--datapath-type", "netdev", "--connect", node(site.tmp, "other"))
    assert (code, err) == (0, ""), out + err
    assert "ensure OVS bridge br-u1" in out


def test_without_libvirt_the_apply_goes_on(site: Site) -> None:  # noqa: F811
    """At boot, before libvirtd, no guest runs: an unreachable libvirt is said, not fatal."""
    site.nic("u1")
    bogus = f"qemu:///system?socket={site.tmp}/no-such-libvirt-sock"
    code, out, err = site.cli("host", "apply", "--networks", str(site.map(LEGACY)),
                              "--connect", bogus)
    assert code == 0, out + err
    assert site.netns.link("u1")["master"] == "red"  # type: ignore[index]

"""Guests keep their traffic through ``vifplug gc`` (namespace stand-ins for guests, as in
tests/functional/test_traffic.py; domains from libvirt's test driver, as in
tests/functional/test_audit_real.py): B and C (access VLAN 100) ping each other before, and
after, a gc that removes an orphaned VIF and re-tags A's port (moved to 200 by hand, so A had
lost B); after gc, A reaches B again."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.fixtures import Netns, PrivateOvs
from tests.functional.test_audit_real import domain_xml
from tests.functional.test_traffic import hybrid_vif, plugged, port_tag
from vifplug.cli import main
from vifplug.model import OvsVif

pytestmark = pytest.mark.root

MAP = """\
[networks.blue]
switch = "ovs"
bridge = "br-int"
vlan = 100
"""


def test_guests_keep_traffic_through_gc(netns: Netns, ovs: PrivateOvs, br_int: str,
                                        tmp_path: Path) -> None:
    a, b, c, gone = (hybrid_vif(100) for _ in range(4))
    with plugged(netns, ovs, [a, b, c, gone], tmp_path) as (_, guests):
        guests.add(a, "198.51.100.41")
        guests.add(b, "198.51.100.42")
        guests.add(c, "198.51.100.43")
        node = tmp_path / "node.xml"
        vifs = [vif for vif in (a, b, c) if isinstance(vif, OvsVif)]
        node.write_text("<node>\n" + "\n".join(domain_xml(f"g{n}", vif)
                                               for n, vif in enumerate(vifs)) + "\n</node>\n")
        (tmp_path / "networks.toml").write_text(MAP)
        ovs.vsctl("set", "Port", a.qvo_name, "tag=200")
        assert guests.ping(a, b) == 0
        assert guests.ping(b, c) == 3

        out, err = io.StringIO(), io.StringIO()
        code = main(["gc", "--older-than", "0", "--netns", netns.name, "--ovsdb", ovs.db,
                     "--connect", f"test://{node}", "--networks", str(tmp_path / "networks.toml"),
                     "--lock-dir", str(tmp_path / "locks"), "--state", str(tmp_path / "seen")],
                     stdout=out, stderr=err)
        assert (code, err.getvalue()) == (0, ""), out.getvalue()
        assert f"delete {gone.qbr_name} if it exists" in out.getvalue()
        assert netns.link(gone.qbr_name) is None
        assert gone.qvo_name not in ovs.ports("br-int")
        assert port_tag(ovs, a) == 100
        assert guests.ping(b, c) == 3
        assert guests.ping(a, b) == 3

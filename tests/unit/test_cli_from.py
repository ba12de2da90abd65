"""`--from os-vif|nova|neutron` on the CLI: the same XML as the vif.json twin, and bad shapes
exit 2 naming the field of the foreign input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from helpers import EXAMPLES, tree
from lxml import etree

from vifplug.cli import main

ID = "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"
NOVA = {"id": ID, "address": "fa:16:3e:12:34:56", "type": "ovs", "ovs_interfaceid": ID,
        "details": {"port_filter": False, "ovs_hybrid_plug": False},
        "network": {"bridge": "br-int", "label": "blue", "meta": {"mtu": 1450, "vlan": 100}}}


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_nova_renders_like_its_vif_json_twin(tmp_path: Path) -> None:
    code, out, err = run("render", "--from", "nova", write(tmp_path, "nova.json", NOVA))
    assert (code, err) == (0, "")
    twin = {"id": ID, "vif_type": "ovs", "mac": "fa:16:3e:12:34:56", "mtu": 1450,
            "network": {"name": "blue", "bridge": "br-int", "vlan": 100},
            "ovs": {"interface_id": ID}}
    _, expected, _ = run("render", write(tmp_path, "twin.json", twin))
    assert tree(etree.fromstring(out)) == tree(etree.fromstring(expected))


def test_os_vif_primitive_round_trip_on_the_cli(tmp_path: Path) -> None:
    pytest.importorskip("os_vif", reason="the os-vif extra is not installed")
    from vifplug import load_vifs
    from vifplug.interop.os_vif import to_os_vif

    vif = load_vifs(EXAMPLES / "ovs-hybrid.json")[0].model_copy(update={"filter": None})
    primitive = to_os_vif(vif).obj_to_primitive()
    code, out, err = run("render", "--from", "os-vif", write(tmp_path, "osvif.json", primitive))
    assert (code, err) == (0, "")
    _, expected, _ = run("render", str(EXAMPLES / "ovs-hybrid.json"))
    mine, theirs = etree.fromstring(out), etree.fromstring(expected)
    for ref in theirs.findall("filterref"):  # os-vif has no nwfilter: the twin's is dropped
        theirs.remove(ref)
    assert tree(mine) == tree(theirs)


@pytest.mark.parametrize(("vif_type", "message"), [
    ("unbound", "the port is not bound"),
    ("binding_failed", "not bound"),
])
def test_unbound_neutron_port_exits_2(vif_type: str, message: str, tmp_path: Path) -> None:
    port = {"id": ID, "mac_address": "fa:16:3e:12:34:56", "network_id": "net1",
            "binding:vif_type": vif_type, "binding:vif_details": {}, "binding:vnic_type": "normal"}
    code, out, err = run("validate", "--from", "neutron", write(tmp_path, "port.json", port))
    assert (code, out) == (2, "")
    assert "$['binding:vif_type']" in err
    assert message in err


def test_nova_missing_address_exits_2(tmp_path: Path) -> None:
    bad = {k: v for k, v in NOVA.items() if k != "address"}
    code, out, err = run("render", "--from", "nova", write(tmp_path, "nova.json", bad))
    assert (code, out) == (2, "")
    assert "$.address" in err


def test_neutron_options_only_with_neutron() -> None:
    code, out, err = run("render", "--network-name", "x", str(EXAMPLES / "bridge.json"))
    assert (code, out) == (2, "")
    assert "--from neutron" in err


def test_plug_dry_run_from_nova(tmp_path: Path) -> None:
    hybrid = {**NOVA, "details": {"port_filter": False, "ovs_hybrid_plug": True}}
    code, out, _ = run("plug", "--dry-run", "--from", "nova",
                       write(tmp_path, "nova.json", hybrid))
    assert code == 0
    assert "(ovs-hybrid):" in out.splitlines()[0]


def test_portgroup_for_foreign_input(tmp_path: Path) -> None:
    """No foreign model carries a portgroup: ``--portgroup`` (``portgroup=``) gives one; a bad
    name is bad input naming the option; it goes with --from only."""
    from vifplug.interop import load_foreign
    from vifplug.interop.neutron import from_neutron_port
    from vifplug.interop.nova import from_nova_vif

    nova = write(tmp_path, "nova.json", NOVA)
    code, out, err = run("render", "--metadata", "--from", "nova", "--portgroup", "sales", nova)
    assert (code, err) == (0, "")
    (entry,) = etree.fromstring(out)
    assert entry.get("portgroup") == "sales"
    assert load_foreign(NOVA, "nova", portgroup="eng")[0].network.portgroup == "eng"
    assert from_nova_vif(NOVA).network.portgroup is None
    assert from_nova_vif(NOVA, portgroup="eng").network.portgroup == "eng"
    port = json.loads((EXAMPLES / "foreign" / "neutron-port.json").read_text())
    port = port.get("port", port)
    assert from_neutron_port(port, "red", portgroup="eng").network.portgroup == "eng"
    code, out, err = run("render", "--from", "nova", "--portgroup", "no good", nova)
    assert (code, out) == (2, "")
    assert "portgroup" in err
    code, out, err = run("render", "--portgroup", "sales", str(EXAMPLES / "bridge.json"))
    assert (code, out) == (2, "")
    assert "--portgroup goes with --from" in err

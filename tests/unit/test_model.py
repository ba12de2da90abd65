"""The VIF model: load_vifs' input forms, immutability, normalisation, defaults, naming."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES
from pydantic import ValidationError

import vifplug
from vifplug import InvalidVifError, Vif, VifError, load_vifs
from vifplug.model import BridgeVif, OvsVif, VhostUserVif
from vifplug.names import check_device_name

ID = "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"
BASE: dict[str, Any] = {"id": ID, "vif_type": "bridge", "mac": "fa:16:3e:12:34:56",
                        "network": {"name": "red", "bridge": "red"}}


def test_package_exports() -> None:
    for name in ("Vif", "load_vifs", "GenericVIFDriver", "VifplugError", "VifError",
                 "InvalidVifError", "UnsupportedError"):
        assert name in vifplug.__all__
        assert getattr(vifplug, name) is not None
    with pytest.raises(AttributeError):
        _ = vifplug.NoSuchThing  # type: ignore[attr-defined]


def test_error_types_inherit_the_matching_builtin() -> None:
    assert issubclass(vifplug.InvalidVifError, ValueError)
    assert issubclass(vifplug.UnsupportedError, vifplug.VifError)
    assert issubclass(vifplug.VifError, vifplug.VifplugError)


@pytest.mark.parametrize("form", ["path", "str-path-is-json", "json", "dict", "list", "tuple"])
def test_load_vifs_forms(form: str, tmp_path: Path) -> None:
    path = tmp_path / "vif.json"
    path.write_text(json.dumps(BASE))
    if form == "path":
        vifs = load_vifs(path)
    elif form == "str-path-is-json":  # a str is always JSON text, never a file name
        with pytest.raises(InvalidVifError, match="not valid JSON"):
            load_vifs(str(path))
        return
    elif form == "json":
        vifs = load_vifs(json.dumps(BASE))
    elif form == "dict":
        vifs = load_vifs(BASE)
    elif form == "list":
        vifs = load_vifs([BASE])
    else:
        vifs = load_vifs((BASE,))
    assert len(vifs) == 1
    assert vifs[0].id == ID


def test_every_example_loads() -> None:
    for path in EXAMPLES.glob("*.json"):
        vifs = load_vifs(path)
        assert vifs, path
        data = json.loads(path.read_text())
        assert len(vifs) == (len(data) if isinstance(data, list) else 1)


def test_errors_name_the_file_and_path(tmp_path: Path) -> None:
    path = tmp_path / "guest.json"
    path.write_text(json.dumps([BASE, {**BASE, "id": ID.replace("0f", "1f"),
                                        "mac": "fa:16:3e:00:00:01",
                                        "network": {"name": "red", "bridge": "red", "vlan": 0}}]))
    with pytest.raises(InvalidVifError) as caught:
        load_vifs(path)
    assert caught.value.path == "$[1].network.vlan"
    assert str(caught.value) == f"{path}: $[1].network.vlan: must be at least 1 (got 0)"


def test_every_problem_is_reported_not_just_the_first() -> None:
    bad = {**BASE, "mac": "nope", "mtu": 1, "network": {"name": "", "bridge": "x" * 16}}
    with pytest.raises(InvalidVifError) as caught:
        load_vifs(bad)
    assert {path for path, _ in caught.value.problems} == {
        "$.mac", "$.mtu", "$.network.name", "$.network.bridge"}


def test_values_are_immutable_and_hashable() -> None:
    vif = load_vifs(BASE)[0]
    with pytest.raises(ValidationError):
        vif.mtu = 1500  # type: ignore[misc]
    with pytest.raises(ValidationError):
        vif.network.vlan = 5  # type: ignore[misc]
    assert {vif, load_vifs(BASE)[0]} == {vif}
    filtered = load_vifs({**BASE, "filter": {"name": "f", "parameters": {"A": "1"}}})[0]
    assert hash(filtered) == hash(load_vifs({**BASE, "filter": {"name": "f",
                                                                "parameters": {"A": "1"}}})[0])
    assert isinstance(filtered.filter.parameters, tuple)  # type: ignore[union-attr]


def test_normalisation() -> None:
    vif = load_vifs({**BASE, "id": ID.upper(), "mac": "FA:16:3E:AB:CD:EF"})[0]
    assert vif.id == ID
    assert vif.mac == "fa:16:3e:ab:cd:ef"


def test_defaults_and_derived_names() -> None:
    vif = load_vifs(BASE)[0]
    assert vif.nic_model == "virtio"
    ovs = load_vifs({**BASE, "vif_type": "ovs", "ovs": {"interface_id": ID},
                     "network": {"name": "blue", "bridge": "br-int"}})[0]
    assert isinstance(ovs, OvsVif)
    assert (vif.tap_name, ovs.tap_name, ovs.qbr_name, ovs.qvb_name, ovs.qvo_name) == (
        "tap0f6d3c1e-5b", "tap0f6d3c1e-5b", "qbr0f6d3c1e-5b", "qvb0f6d3c1e-5b", "qvo0f6d3c1e-5b")
    assert all(len(name) == 14 for name in (vif.tap_name, ovs.qbr_name))
    assert not hasattr(vif, "qbr_name")  # a Linux-bridge VIF has no hybrid bridge
    assert load_vifs({**BASE, "devname": "mytap"})[0].tap_name == "mytap"
    qbh = load_vifs(EXAMPLES / "802.1qbh.json")[0]
    qbg = load_vifs(EXAMPLES / "802.1qbg.json")[0]
    assert (qbh.direct_mode, qbg.direct_mode) == ("passthrough", "vepa")
    vhu = load_vifs(EXAMPLES / "vhostuser.json")[0]
    assert isinstance(vhu, VhostUserVif)
    assert vhu.port_name == "vhu3c4d5e6f-7a"  # no devname: os-vif's name for the OVS port
    named = load_vifs({**vhu.to_dict(), "devname": "vhu-guest1"})[0]
    assert isinstance(named, VhostUserVif)
    assert (named.port_name, named.host_device) == ("vhu-guest1", "vhu-guest1")
    assert vhu.vhostuser.mode == "server"


def test_to_dict_leaves_defaults_out() -> None:
    assert load_vifs(BASE)[0].to_dict() == BASE


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ValidationError):
        BridgeVif(**{**BASE, "mtu": 10})
    with pytest.raises(TypeError, match="Vif is the base of the VIF kinds"):
        Vif(**{**BASE, "network": {"name": "red"}})


def test_each_kind_is_its_own_class() -> None:
    kinds = {type(vif).__name__ for path in sorted(EXAMPLES.glob("*.json"))
             for vif in load_vifs(path)}
    assert kinds == {"BridgeVif", "OvsVif", "QbgVif", "QbhVif", "DirectVif", "EthernetVif",
                     "VhostUserVif", "HostDevVif", "VdpaVif"}
    assert all(isinstance(vif, Vif) for vif in load_vifs(EXAMPLES / "guest-three-nics.json"))
    # a key only another kind takes, left unset (null or false), is accepted as format 1 was
    vif = load_vifs({**BASE, "ovs": None, "plug": None,
                     "network": {**BASE["network"], "trunk": None}})[0]
    assert vif == load_vifs(BASE)[0]


def test_loading_picks_the_kind_as_the_discriminated_union_does() -> None:
    from pydantic import TypeAdapter

    from vifplug.model import AnyVif

    union: TypeAdapter[Vif] = TypeAdapter(AnyVif)
    for path in sorted(EXAMPLES.glob("*.json")):
        data = json.loads(path.read_text())
        for item in data if isinstance(data, list) else [data]:
            assert load_vifs(item)[0] == union.validate_python(item), path.name


def test_vif_parse_on_a_kind_takes_that_kind_only() -> None:
    assert isinstance(BridgeVif.parse(BASE), BridgeVif)
    with pytest.raises(InvalidVifError, match=r"vif_type: must be one of 'ovs'"):
        OvsVif.parse(BASE)


@pytest.mark.parametrize(("name", "reserved", "ok"), [
    ("tap0f6d3c1e-5b", True, True), ("a" * 15, False, True), ("a" * 16, False, False),
    ("", False, False), (".", False, False), ("..", False, False), ("a b", False, False),
    ("eth0;rm", False, False), ("vnet0", True, False), ("vnet0", False, True),
    ("macvtap1", True, False), ("vif1.0", True, False), ("macvlan0", True, False),
    ("é", False, False),
])
def test_device_names(name: str, reserved: bool, ok: bool) -> None:
    if ok:
        assert check_device_name(name, reserved=reserved) == name
    else:
        with pytest.raises(ValueError):  # noqa: PT011 - the message is checked elsewhere
            check_device_name(name, reserved=reserved)


def test_bad_json_is_a_vif_error() -> None:
    with pytest.raises(VifError, match=r"^\$: not valid JSON"):
        load_vifs("{")


def test_import_is_light() -> None:
    """``import vifplug`` and rendering never import host or ecosystem libraries."""
    code = (
        "import sys, vifplug\n"
        "heavy = {'pyroute2', 'ovsdbapp', 'libvirt', 'os_vif', 'pydantic'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
        "from pathlib import Path\n"
        "from vifplug import GenericVIFDriver, load_vifs\n"
        f"vifs = load_vifs(Path({str(EXAMPLES / 'guest-three-nics.json')!r}))\n"
        "GenericVIFDriver(firewall=True).render(vifs[0])\n"
        "heavy.discard('pydantic')\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_hosted_takes_the_hosts_devices_and_keeps_the_guests() -> None:
    """Vif.hosted (plug --networks): the host side the map chose replaces the VIF's own
    devices; identities, MAC, MTU and the portgroup stay; a kind that cannot make it says None."""
    from vifplug.model import HostSide

    data = json.loads((EXAMPLES / "ovs-trunk.json").read_text())
    data["network"]["portgroup"] = "eng"
    (ovs,) = load_vifs(data)
    side = HostSide("bridge", {"bridge": "br-x"}, "openvswitch", None, (10, 20))
    (moved,) = load_vifs(ovs.hosted(side))
    assert moved.network.bridge == "br-x"  # type: ignore[attr-defined]
    assert moved.network.trunk == (10, 20)  # type: ignore[attr-defined]
    assert (moved.plug, moved.network.portgroup, moved.mac, moved.mtu) == (  # type: ignore[attr-defined]
        "virtualport", "eng", ovs.mac, ovs.mtu)
    assert moved.ovs == ovs.ovs  # type: ignore[attr-defined]
    assert ovs.hosted(side._replace(virtualport=None)) is None  # a Linux bridge: not an ovs VIF's
    (bridge,) = load_vifs(json.loads((EXAMPLES / "bridge.json").read_text()))
    assert bridge.hosted(side) is None
    (hostdev,) = load_vifs(json.loads((EXAMPLES / "hostdev.json").read_text()))
    assert hostdev.hosted(side) is None

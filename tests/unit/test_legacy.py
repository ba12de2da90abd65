"""The deprecated seed-design drivers: the same XML as GenericVIFDriver, and one warning."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from helpers import EXAMPLES, tree

import vifplug
from vifplug import GenericVIFDriver, UnsupportedError, load_vifs

BRIDGE = load_vifs(EXAMPLES / "bridge.json")[0]
OVS = load_vifs(EXAMPLES / "ovs-virtualport.json")[0]

LEGACY = [
    # (class name, the VIF it connects, the equivalent GenericVIFDriver call)
    ("LibvirtBridgeDriver", BRIDGE, BRIDGE, {}),
    ("QuantumLinuxBridgeVIFDriver", BRIDGE, BRIDGE, {}),
    ("LibvirtOpenVswitchDriver", OVS, OVS.model_copy(update={"plug": "manual"}), {}),
    ("LibvirtHybridOVSBridgeDriver", OVS, OVS, {"firewall": True}),
    ("LibvirtOpenVswitchVirtualPortDriver", OVS, OVS, {"firewall": False}),
]


@pytest.fixture(autouse=True)
def _fresh_warning_state(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, *_ in LEGACY:
        monkeypatch.setattr(getattr(vifplug, name), "_warned", False)


@pytest.mark.parametrize(("name", "vif", "generic_vif", "generic_options"), LEGACY,
                         ids=[case[0] for case in LEGACY])
def test_same_xml_as_generic(name: str, vif: Any, generic_vif: Any,
                             generic_options: dict[str, Any]) -> None:
    cls = getattr(vifplug, name)
    with pytest.warns(DeprecationWarning, match=f"{name} is deprecated"):
        legacy = cls()
    assert isinstance(legacy, GenericVIFDriver)
    assert tree(legacy.interface_xml(vif)) == tree(
        GenericVIFDriver(**generic_options).interface_xml(generic_vif))
    # The fixed connection holds whatever the options say (the hybrid driver without firewall).
    assert legacy.select(vif).name == cls.fixed


@pytest.mark.parametrize("name", [case[0] for case in LEGACY])
def test_warns_once(name: str) -> None:
    cls = getattr(vifplug, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cls()
        cls(firewall=True)
        cls(libvirt_version="9.0.0")
    assert [w.category for w in caught] == [DeprecationWarning]


def test_wrong_vif_type_is_refused() -> None:
    with pytest.warns(DeprecationWarning, match="deprecated"):
        driver = vifplug.LibvirtBridgeDriver()
    with pytest.raises(UnsupportedError, match="connects vif_type bridge only"):
        driver.render(OVS)


@pytest.mark.parametrize(("name", "plug"), [
    ("LibvirtOpenVswitchVirtualPortDriver", "hybrid"),
    ("LibvirtHybridOVSBridgeDriver", "manual"),
    ("LibvirtOpenVswitchDriver", "virtualport"),
])
def test_a_contradicting_plug_is_refused(name: str, plug: str) -> None:
    with pytest.warns(DeprecationWarning, match="deprecated"):
        driver = getattr(vifplug, name)()
    with pytest.raises(UnsupportedError, match=f"contradicts plug '{plug}'"):
        driver.render(OVS.model_copy(update={"plug": plug}))
    # the plug the driver stands for is fine
    fixed = driver.connections[driver.fixed].plug_method
    assert driver.render(OVS.model_copy(update={"plug": fixed}))


def test_virtualport_driver_refuses_old_libvirt() -> None:
    with pytest.warns(DeprecationWarning, match="deprecated"):
        driver = vifplug.LibvirtOpenVswitchVirtualPortDriver(libvirt_version="0.9.10")
    with pytest.raises(UnsupportedError, match=r"needs libvirt >= 0\.9\.11"):
        driver.render(OVS)


def test_manual_driver_on_old_libvirt_has_no_managed() -> None:
    with pytest.warns(DeprecationWarning, match="deprecated"):
        driver = vifplug.LibvirtOpenVswitchDriver(libvirt_version="0.9.10")
    element = driver.interface_xml(OVS)
    assert element.get("type") == "ethernet"
    assert element.find("target").get("managed") is None

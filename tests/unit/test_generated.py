"""Property tests: any valid VIF, under any driver options, renders XML that libvirt's RelaxNG
accepts and that the test:///default driver defines and starts; the model round-trips."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import DomainChecker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import libvirt_versions, vif_dicts

from vifplug import GenericVIFDriver, UnsupportedError, Vif, load_vifs
from vifplug.connections.base import OVS_VIRTUALPORT, VDPA, version_gates
from vifplug.version import LibvirtVersion

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=vif_dicts(), firewall=st.booleans(), version=libvirt_versions())
def test_generated_vifs_are_valid_libvirt(data: dict[str, Any], firewall: bool,
                                          version: str | None,
                                          libvirt_check: DomainChecker) -> None:
    vif = load_vifs(data)[0]
    driver = GenericVIFDriver(firewall=firewall, libvirt_version=version)
    needs = [since for _, since in version_gates(vif)] + (
        [VDPA] if vif.vif_type == "vdpa" else [])
    if version is not None and any(LibvirtVersion.parse(version) < since for since in needs):
        with pytest.raises(UnsupportedError, match="needs libvirt >= "):
            driver.select(vif)
        return
    if (getattr(vif, "plug", None) == "virtualport" and version is not None
            and LibvirtVersion.parse(version) < OVS_VIRTUALPORT):
        try:
            driver.select(vif)
        except UnsupportedError:
            return
        raise AssertionError("plug 'virtualport' on libvirt < 0.9.11 must be refused")
    element = driver.interface_xml(vif)
    assert element.find("mac").get("address") == data["mac"].lower()
    live = libvirt_check.check([element], driver.metadata_xml([vif]))
    assert live.find("devices/interface/mac").get("address") == vif.mac


@settings(max_examples=300, deadline=None)
@given(data=vif_dicts())
def test_model_round_trips(data: dict[str, Any]) -> None:
    vif = load_vifs(data)[0]
    again = Vif.parse(vif.to_dict())
    assert again == vif
    assert hash(again) == hash(vif)
    assert load_vifs(vif.to_json())[0] == vif

"""vifplug: connect virtual machines' NICs to host networking.

    from pathlib import Path
    from vifplug import GenericVIFDriver, load_vifs
    for vif in load_vifs(Path("vif.json")):  # a str is JSON text, a Path a file
        print(GenericVIFDriver(firewall=True).render(vif))

The public names below are imported on first use (PEP 562), so ``import vifplug`` stays as cheap
as importing lxml: a libvirt hook that only needs the version pays for nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vifplug.errors import InvalidVifError, UnsupportedError, VifError, VifplugError

if TYPE_CHECKING:
    from vifplug.driver import GenericVIFDriver
    from vifplug.legacy import (
        LibvirtBridgeDriver,
        LibvirtHybridOVSBridgeDriver,
        LibvirtOpenVswitchDriver,
        LibvirtOpenVswitchVirtualPortDriver,
        QuantumLinuxBridgeVIFDriver,
    )
    from vifplug.loading import load_vifs
    from vifplug.model import Vif
    from vifplug.version import LibvirtVersion

__version__ = "0.1.0"

__all__ = [
    "GenericVIFDriver",
    "InvalidVifError",
    "LibvirtBridgeDriver",
    "LibvirtHybridOVSBridgeDriver",
    "LibvirtOpenVswitchDriver",
    "LibvirtOpenVswitchVirtualPortDriver",
    "LibvirtVersion",
    "QuantumLinuxBridgeVIFDriver",
    "UnsupportedError",
    "Vif",
    "VifError",
    "VifplugError",
    "load_vifs",
]

_LAZY = {
    "Vif": "vifplug.model",
    "load_vifs": "vifplug.loading",
    "LibvirtVersion": "vifplug.version",
    "GenericVIFDriver": "vifplug.driver",
    "LibvirtBridgeDriver": "vifplug.legacy",
    "LibvirtHybridOVSBridgeDriver": "vifplug.legacy",
    "LibvirtOpenVswitchDriver": "vifplug.legacy",
    "LibvirtOpenVswitchVirtualPortDriver": "vifplug.legacy",
    "QuantumLinuxBridgeVIFDriver": "vifplug.legacy",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vifplug' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

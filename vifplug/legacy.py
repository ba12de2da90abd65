"""The seed design's fixed-connection drivers, deprecated: GenericVIFDriver with one connection
fixed, kept for callers that still name them (each warns once)."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from vifplug.driver import GenericVIFDriver
from vifplug.errors import UnsupportedError
from vifplug.model import OvsVif, Vif
from vifplug.selection import Selection

__all__ = [
    "LibvirtBridgeDriver",
    "LibvirtHybridOVSBridgeDriver",
    "LibvirtOpenVswitchDriver",
    "LibvirtOpenVswitchVirtualPortDriver",
    "QuantumLinuxBridgeVIFDriver",
]


class _FixedConnectionDriver(GenericVIFDriver):
    """A GenericVIFDriver that always uses one connection (the seed design's driver classes)."""

    fixed: ClassVar[str]
    _warned: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        if not cls._warned:
            cls._warned = True
            warnings.warn(
                f"{cls.__name__} is deprecated: use GenericVIFDriver, which picks the "
                f"connection ({self.fixed!r} here) from the VIF",
                DeprecationWarning, stacklevel=2,
            )
        super().__init__(*args, **kwargs)

    def selection(self, vif: Vif) -> Selection:
        connection = self.connections[self.fixed]
        if vif.vif_type not in connection.vif_types:
            raise UnsupportedError(
                f"$.vif_type: {type(self).__name__} connects vif_type "
                f"{'/'.join(sorted(connection.vif_types))} only (got {vif.vif_type!r})"
            )
        if isinstance(vif, OvsVif) and vif.plug is not None \
                and vif.plug != connection.plug_method:
            raise UnsupportedError(
                f"$.plug: {type(self).__name__} always uses {self.fixed!r}, which contradicts "
                f"plug {vif.plug!r} (use GenericVIFDriver)"
            )
        needs = connection.min_libvirt
        if needs is not None and not self.options.supports(needs):
            raise UnsupportedError(
                f"{type(self).__name__}: {self.fixed!r} needs libvirt >= {needs} "
                f"(the XML is for libvirt {self.options.version_text})"
            )
        return Selection(connection, f"{type(self).__name__} always uses {self.fixed!r}")


class LibvirtBridgeDriver(_FixedConnectionDriver):
    """Deprecated: a Linux bridge VIF. Use :class:`GenericVIFDriver`."""

    fixed = "bridge"


class QuantumLinuxBridgeVIFDriver(_FixedConnectionDriver):
    """Deprecated: the Quantum-era Linux bridge agent's VIF (a Linux bridge). Use
    :class:`GenericVIFDriver`."""

    fixed = "bridge"


class LibvirtOpenVswitchDriver(_FixedConnectionDriver):
    """Deprecated: an OVS VIF plugged manually (``type='ethernet'``). Use
    :class:`GenericVIFDriver` with ``plug: manual``."""

    fixed = "ovs-manual"


class LibvirtHybridOVSBridgeDriver(_FixedConnectionDriver):
    """Deprecated: an OVS VIF on the hybrid path. Use :class:`GenericVIFDriver` with
    ``firewall=True`` or ``plug: hybrid``."""

    fixed = "ovs-hybrid"


class LibvirtOpenVswitchVirtualPortDriver(_FixedConnectionDriver):
    """Deprecated: an OVS VIF with ``<virtualport type='openvswitch'>``. Use
    :class:`GenericVIFDriver`."""

    fixed = "ovs-virtualport"

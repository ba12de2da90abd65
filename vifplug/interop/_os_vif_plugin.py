"""vifplug as an os-vif plugin: ``os_vif.plug(vif, instance_info)`` plugs with vifplug's own host
code (pyroute2 + one OVSDB transaction) when ``vif.plugin`` is ``"vifplug"``.

Imported (and os-vif with it) only when the entry point ``vifplug`` of group ``os_vif`` is loaded
or ``vifplug.interop.os_vif.VifplugPlugin`` is first used. Options, group ``[os_vif_vifplug]``
(os-vif registers them when ``os_vif.initialize()`` loads the plugin):

- ``ovsdb_connection`` (``unix:/run/openvswitch/db.sock``), ``ovsdb_backend`` (``native`` or
  ``vsctl``): the OVSDB to plug OVS ports into;
- ``netns`` (none): plug inside this network namespace instead of the host's;
- ``firewall`` (false): the host firewalls guests, so an OVS VIF whose switch does not filter
  takes the hybrid path when its plug method is not fixed (os-vif's classes always fix it:
  ``VIFBridge`` is hybrid, ``VIFOpenVSwitch`` is not);
- ``create_ovs_bridges`` (false): create a missing OVS bridge (os-vif's ``ovs`` plugin always
  does; vifplug refuses by default, so a typo in a bridge name does not make a new switch);
- ``lock_dir`` (``/run/vifplug/locks``): vifplug's per-VIF lock files.

One :class:`~vifplug.host.Host` (one netlink socket, one OVSDB connection) serves every call,
reopened when the options change; calls are serialised. Errors become os-vif's: bad input and
host failures ``PlugException`` / ``UnplugException``, a missing device
``NetworkInterfaceNotFound``; the vifplug error is the ``__cause__`` (``StepFailed.rolled_back``
says whether the host is as before).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from oslo_config import cfg

from vifplug.errors import VifplugError
from vifplug.host.ovsdb import DEFAULT_OVSDB
from vifplug.interop.os_vif import SUPPORTED, from_os_vif, instance_uuid_of, os_vif_objects

os_vif_objects()  # imports os-vif with eventlet's import-time warning silenced (see there)

from os_vif import exception, objects, plugin  # noqa: E402

__all__ = ["PLUGIN_NAME", "VifplugPlugin"]

PLUGIN_NAME = "vifplug"

#: (VIF class, newest version understood); port profiles as (class, newest version).
_VIF_VERSIONS = {"VIFBridge": "1.0", "VIFOpenVSwitch": "1.0", "VIFDirect": "1.0",
                 "VIFHostDevice": "1.0", "VIFVHostUser": "1.1", "VIFGeneric": "1.0"}
_PROFILE_VERSIONS = {"VIFPortProfileOpenVSwitch": "1.4", "VIFPortProfile8021Qbg": "1.1",
                     "VIFPortProfile8021Qbh": "1.1"}


class VifplugPlugin(plugin.PluginBase):  # type: ignore[misc]  # os-vif ships no type hints
    """Plugs and unplugs os-vif VIFs with vifplug (see the module's docstring)."""

    CONFIG_OPTS: ClassVar[list[cfg.Opt]] = [
        cfg.StrOpt("ovsdb_connection", default=DEFAULT_OVSDB,
                   help="The OVSDB server vifplug adds OVS ports to (unix:PATH or tcp:IP:PORT)."),
        cfg.StrOpt("ovsdb_backend", default="native", choices=["native", "vsctl"],
                   help="native: ovsdbapp's IDL; vsctl: one ovs-vsctl per plug."),
        cfg.StrOpt("netns", default=None,
                   help="Plug inside this network namespace (ip netns) instead of the host's."),
        cfg.BoolOpt("firewall", default=False,
                    help="The host firewalls guest traffic: OVS VIFs whose switch does not "
                    "filter take the hybrid path when their plug method is not fixed."),
        cfg.BoolOpt("create_ovs_bridges", default=False,
                    help="Create a missing OVS bridge instead of refusing the plug."),
        cfg.StrOpt("lock_dir", default=None,
                   help="Directory of vifplug's per-VIF lock files (default /run/vifplug/locks)."),
    ]

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._lock = threading.Lock()
        self._host: Any = None
        self._host_key: tuple[Any, ...] | None = None

    def describe(self) -> Any:
        profiles = {name: objects.host_info.HostPortProfileInfo(
            profile_object_name=name, min_version="1.0", max_version=version)
            for name, version in _PROFILE_VERSIONS.items()}
        return objects.host_info.HostPluginInfo(plugin_name=PLUGIN_NAME, vif_info=[
            objects.host_info.HostVIFInfo(
                vif_object_name=name, min_version="1.0", max_version=_VIF_VERSIONS[name],
                supported_port_profiles=[profiles[p] for p in allowed if p is not None])
            for name, allowed in SUPPORTED.items()
        ])

    def plug(self, vif: Any, instance_info: Any) -> None:
        self._run("plug", vif, instance_info)

    def unplug(self, vif: Any, instance_info: Any) -> None:
        self._run("unplug", vif, instance_info)

    def close(self) -> None:
        """Close the Host (its netlink socket and OVSDB connection); the next call reopens it."""
        with self._lock:
            self._close()

    def _run(self, op: str, vif: Any, instance_info: Any) -> None:
        from vifplug.driver import GenericVIFDriver
        from vifplug.host.errors import MissingDeviceError

        failure = exception.PlugException if op == "plug" else exception.UnplugException
        vif_id = getattr(vif, "id", None)
        try:
            ours = from_os_vif(vif, instance_info)
            driver = GenericVIFDriver(firewall=bool(self.config.firewall))
            with self._lock:
                host = self._current_host()
                if op == "plug":
                    driver.plug(ours, host, instance_uuid=instance_uuid_of(instance_info),
                                create_ovs_bridges=bool(self.config.create_ovs_bridges))
                else:
                    driver.unplug(ours, host)
        except MissingDeviceError as exc:
            raise exception.NetworkInterfaceNotFound(
                message=f"vifplug: {exc}", interface=exc.device) from exc
        except VifplugError as exc:
            raise failure(message=f"vifplug: {exc}", vif=vif_id, err=exc) from exc

    def _current_host(self) -> Any:
        from vifplug.host import Host

        lock_dir = self.config.lock_dir
        key = (self.config.netns, self.config.ovsdb_connection, self.config.ovsdb_backend,
               lock_dir)
        if self._host is None or key != self._host_key:
            self._close()
            self._host = Host(netns=key[0], ovsdb=key[1], ovsdb_backend=key[2],
                              lock_dir=None if lock_dir is None else Path(lock_dir))
            self._host_key = key
        return self._host

    def _close(self) -> None:
        if self._host is not None:
            self._host.close()
        self._host = None
        self._host_key = None

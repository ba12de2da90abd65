"""The host edge: the only code that touches net devices (netlink) and Open vSwitch (OVSDB).

    from vifplug.host import Host
    with Host(netns=None, ovsdb="unix:/run/openvswitch/db.sock", ovsdb_backend="native") as host:
        GenericVIFDriver(firewall=True).plug(vif, host, instance_uuid=uuid)

A Host opens its netlink socket and OVSDB connection lazily, on the first step that needs them,
and keeps them for its lifetime (one socket and one connection however many VIFs it plugs).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from vifplug.host.errors import HostError, MissingDeviceError, StepFailed
from vifplug.host.netlink import Netlink, check_netns
from vifplug.host.ovsdb import DEFAULT_OVSDB, Backend, Ovsdb, check_ovsdb_url, open_ovsdb
from vifplug.plan import Step

__all__ = ["DEFAULT_OVSDB", "Host", "HostError", "MissingDeviceError", "StepFailed"]


class Host:
    """This host (or one network namespace of it) and its OVSDB."""

    def __init__(self, netns: str | None = None, ovsdb: str = DEFAULT_OVSDB,
                 ovsdb_backend: Backend = "native", *, lock_dir: Path | None = None) -> None:
        check_netns(netns)
        check_ovsdb_url(ovsdb)
        if ovsdb_backend not in ("native", "vsctl"):
            from vifplug.errors import VifError

            raise VifError(f"--ovsdb-backend: expected 'native' or 'vsctl' "
                           f"(got {ovsdb_backend!r})")
        self.netns = netns
        self.ovsdb_url = ovsdb
        self.ovsdb_backend: Backend = ovsdb_backend
        self.lock_dir = lock_dir
        self._netlink: Netlink | None = None
        self._ovsdb: Ovsdb | None = None

    @property
    def netlink(self) -> Netlink:
        if self._netlink is None:
            self._netlink = Netlink(self.netns)
        return self._netlink

    @property
    def ovsdb(self) -> Ovsdb:
        if self._ovsdb is None:
            self._ovsdb = open_ovsdb(self.ovsdb_url, self.ovsdb_backend)
        return self._ovsdb

    def ovsdb_pending(self, steps: Sequence[Step]) -> list[Step]:
        """The OVSDB steps whose state does not hold yet (one read for all of them)."""
        if not steps:
            return []
        snapshot = self.ovsdb.snapshot(steps)
        return [step for step in steps if not snapshot.holds(step)]

    @property
    def scope(self) -> str:
        """Names this host in lock files: plugs into different namespaces never contend."""
        return f"netns-{self.netns}" if self.netns else "host"

    def close(self) -> None:
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None
        if self._ovsdb is not None:
            self._ovsdb.close()
            self._ovsdb = None

    def __enter__(self) -> Host:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

"""The host edge: the only code that touches net devices (netlink) and Open vSwitch (OVSDB).

    from vifplug.host import Host
    with Host(netns=None, ovsdb="unix:/run/openvswitch/db.sock", ovsdb_backend="native") as host:
        GenericVIFDriver(firewall=True).plug(vif, host, instance_uuid=uuid)

A Host opens its netlink socket and OVSDB connection lazily, on the first step that needs them,
and keeps them for its lifetime (one socket and one connection however many VIFs it plugs).
Many threads may use one Host at once: their OVSDB steps share transactions, and netlink stays
on two sockets however many threads come and go (:mod:`vifplug.host.threads`).
Both sit behind small protocols (:class:`~vifplug.host.netlink.Netlink`,
:class:`~vifplug.host.ovsdb.Ovsdb`); :meth:`Host.using` builds a Host over other
implementations, such as the in-memory fakes of :mod:`vifplug.host.fake` the unit tests use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from vifplug.host.errors import HostError, MissingDeviceError, StepFailed
from vifplug.host.netlink import Netlink, Pyroute2Netlink, check_netns
from vifplug.host.ovsdb import (
    DEFAULT_OVSDB,
    Backend,
    NativeOvsdb,
    Ovsdb,
    OvsdbReader,
    check_ovsdb_backend,
    check_ovsdb_url,
    open_ovsdb,
)
from vifplug.host.threads import GroupCommit, NetlinkThread
from vifplug.plan import Step

__all__ = ["CHAR_DEVICES", "DEFAULT_OVSDB", "PCI_DEVICES", "Host", "HostError",
           "MissingDeviceError", "StepFailed"]

#: Where the kernel lists this host's PCI devices (SR-IOV VFs for hostdev VIFs).
PCI_DEVICES = Path("/sys/bus/pci/devices")
#: Where this host's character devices are (vhost-vdpa devices for vdpa VIFs).
CHAR_DEVICES = Path("/dev")


class Host:
    """This host (or one network namespace of it) and its OVSDB."""

    def __init__(self, netns: str | None = None, ovsdb: str = DEFAULT_OVSDB,
                 ovsdb_backend: Backend = "native", *, lock_dir: Path | None = None) -> None:
        check_netns(netns)
        check_ovsdb_url(ovsdb)
        self.netns = netns
        self.ovsdb_url = ovsdb
        self.ovsdb_backend: Backend = check_ovsdb_backend(ovsdb_backend)
        self.lock_dir = lock_dir
        #: Where PCI devices are looked for (checks of hostdev VIFs).
        self.pci_devices = PCI_DEVICES
        #: Where ``/dev/…`` device paths are looked for (checks of vdpa VIFs).
        self.char_devices = CHAR_DEVICES
        self._opening = threading.Lock()
        self._netlink: Netlink | None = None
        #: The thread that uses the Host's own netlink socket: the one that made the Host
        #: (which closes it, too: pyroute2 frees a thread's event loop only on that thread).
        self._netlink_owner = threading.current_thread()
        self._netlink_thread: NetlinkThread | None = None
        self._others: Netlink | None = None
        self._ovsdb: Ovsdb | None = None
        self._reader: OvsdbReader | None = None
        #: OVSDB transactions, shared by the plugs and unplugs of concurrent threads.
        self.transactions = GroupCommit(self._send)
        self._open_netlink: Callable[[], Netlink] = lambda: Pyroute2Netlink(self.netns)
        self._open_ovsdb: Callable[[], Ovsdb] = lambda: open_ovsdb(self.ovsdb_url,
                                                                   self.ovsdb_backend)

    @classmethod
    def using(cls, netlink: Netlink, ovsdb: Ovsdb, *, netns: str | None = None,
              lock_dir: Path | None = None, pci_devices: Path = PCI_DEVICES,
              char_devices: Path = CHAR_DEVICES) -> Host:
        """A Host over these (already made) netlink and OVSDB implementations, e.g.
        ``Host.using(FakeNetlink(), FakeOvsdb())``; after :meth:`close` it uses them again.
        ``netns`` only names the namespace in messages (it is not checked: the implementations
        are wherever they are)."""
        host = cls(lock_dir=lock_dir)
        host.netns = netns
        host.pci_devices = pci_devices
        host.char_devices = char_devices
        host._open_netlink = lambda: netlink
        host._open_ovsdb = lambda: ovsdb
        return host

    @property
    def netlink(self) -> Netlink:
        """The netlink socket for the calling thread: the Host's own for the thread that made
        the Host, the Host's netlink thread for every other."""
        with self._opening:
            if self._netlink_owner is threading.current_thread():
                if self._netlink is None:
                    self._netlink = self._open_netlink()
                return self._netlink
            if self._others is None:
                self._netlink_thread = NetlinkThread(self._open_netlink)
                self._others = self._netlink_thread.proxy()
            return self._others

    @property
    def ovsdb(self) -> Ovsdb:
        with self._opening:
            if self._ovsdb is None:
                self._ovsdb = self._open_ovsdb()
            return self._ovsdb

    @property
    def ovsdb_reader(self) -> OvsdbReader:
        """OVSDB as readiness reads it: the write backend when it can (the native IDL, the
        fake), else a native IDL connection of its own (ovs-vsctl cannot wait on changes)."""
        ovsdb = self.ovsdb
        with self._opening:
            if self._reader is None:
                self._reader = (ovsdb if isinstance(ovsdb, OvsdbReader)
                                else NativeOvsdb(self.ovsdb_url))
            return self._reader

    def commit(self, steps: Sequence[Step]) -> int | None:
        """Commit OVSDB steps in one transaction — shared with the steps of other threads
        committing at the same time (:class:`~vifplug.host.threads.GroupCommit`), without
        waiting for ovs-vswitchd. The transaction's ``next_cfg``."""
        return self.transactions.commit(steps)

    def _send(self, steps: Sequence[Step]) -> int | None:
        return self.ovsdb.commit(steps)  # the connection opened on first use

    def ovsdb_pending(self, steps: Sequence[Step]) -> list[Step]:
        """The OVSDB steps whose state does not hold yet (one read for all of them)."""
        if not steps:
            return []
        snapshot = self.ovsdb.snapshot(steps)
        return [step for step in steps if not step.holds(snapshot)]

    @property
    def scope(self) -> str:
        """Names this host in lock files: plugs into different namespaces never contend."""
        return f"netns-{self.netns}" if self.netns else "host"

    def close(self) -> None:
        """Close the sockets and the connection (the Host opens them again if used again).
        Call it from the thread that made the Host: pyroute2 frees the event loop of the
        thread that used a socket only on that thread."""
        if self._netlink_thread is not None:
            self._netlink_thread.close()
            self._netlink_thread = self._others = None
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None
        reader: object = self._reader
        if self._reader is not None and reader is not self._ovsdb:
            self._reader.close()  # readiness's own connection
        self._reader = None
        if self._ovsdb is not None:
            self._ovsdb.close()
            self._ovsdb = None

    def __enter__(self) -> Host:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

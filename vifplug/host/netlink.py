"""Net devices through netlink: the :class:`Netlink` protocol (the operations plans need, each a
single request) and :class:`Pyroute2Netlink`, its implementation in the host's or a named netns:
look-ups and the commonest changes over a raw rtnetlink socket encoded and decoded here
(:class:`_Rtnl`), creating and deleting devices over a pyroute2 socket, and what must run inside
the namespace (TAPs, sysctls, opening sockets) on one thread kept there.

pyroute2 is imported here and only here (it costs ~0.2 s), when the first request needs it.
"""

from __future__ import annotations

import errno
import os
import queue
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vifplug.errors import VifError
from vifplug.host.errors import HostError

#: Linux bridge port states (IFLA_BRPORT_STATE / BR_STATE_*).
PORT_STATES = {0: "disabled", 1: "listening", 2: "learning", 3: "forwarding", 4: "blocking"}
#: The kernel bonding driver's modes, by their IFLA_BOND_MODE number.
BOND_MODES = ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad",
              "balance-tlb", "balance-alb")
#: The rtnetlink multicast group of link changes.
_RTMGRP_LINK = 1

__all__ = ["Link", "Netlink", "Pyroute2Netlink", "check_netns"]

#: ``ip netns add NAME`` makes ``/run/netns/NAME``.
NETNS_DIR = Path("/run/netns")


def check_netns(name: str | None) -> None:
    """A ``--netns`` name must name an existing namespace (bad input otherwise: exit 2)."""
    if name is None:
        return
    if not name or "/" in name or name in (".", "..") or not name.isprintable():
        raise VifError(f"--netns: expected a network namespace name (got {name!r})")
    if not (NETNS_DIR / name).exists():
        raise VifError(f"--netns: no network namespace {name!r} ({NETNS_DIR / name} is missing)")


@dataclass(frozen=True, slots=True)
class Link:
    """What plans need to know of an existing net device."""

    index: int
    name: str
    kind: str | None
    mtu: int
    up: bool
    master: int | None
    #: The veth peer's index (IFLA_LINK), or the VLAN device's parent.
    link: int | None
    group: int
    #: For bridges: forward delay and ageing time (centiseconds, as the kernel reports them).
    forward_delay: int | None
    ageing_time: int | None
    #: For TAPs: (no packet info, vnet_hdr, multi-queue).
    tun_flags: tuple[bool, bool, bool] | None
    #: The MAC address (``aa:bb:cc:dd:ee:ff``), when the kernel says it.
    address: str | None = None
    #: As a Linux bridge port: whether it is isolated (IFLA_BRPORT_ISOLATED); None otherwise.
    port_isolated: bool | None = None


class Netlink(Protocol):
    """The net device operations plans need — exactly what :mod:`vifplug.host.apply` and the
    steps of :mod:`vifplug.plan` call — each one request.

    A request the kernel refuses raises pyroute2's ``NetlinkError`` with the errno in ``code``
    (``EEXIST``: a device of that name exists; ``ENODEV``: none does): callers compare the code,
    never swallow every error. :class:`Pyroute2Netlink` is the real one;
    :class:`vifplug.host.fake.FakeNetlink` models the kernel in memory for unit tests.
    """

    def get(self, name: str) -> Link | None:
        """The device called ``name``, or ``None``."""
        ...

    def name_of(self, index: int) -> str | None:
        """The name of the device with index ``index``, or ``None``."""
        ...

    def add_bridge(self, name: str, *, forward_delay: int | None,
                   ageing_time: int | None) -> None:
        """A Linux bridge, down, with the settings given (centiseconds)."""
        ...

    def set_bridge(self, name: str, *, forward_delay: int | None,
                   ageing_time: int | None) -> None:
        """Change the bridge settings given (``None``: leave it as it is)."""
        ...

    def add_veth(self, name: str, peer: str) -> None:
        """A veth pair, both ends down."""
        ...

    def add_vlan(self, name: str, parent: str, vlan: int) -> None:
        """A VLAN device on ``parent`` (:class:`HostError` when the parent is missing)."""
        ...

    def add_tap(self, name: str, *, multi_queue: bool) -> None:
        """A persistent TAP, down: no packet info, vnet_hdr, multi-queue as asked."""
        ...

    def add_bond(self, name: str, mode: str) -> None:
        """A kernel bond, down, in ``mode`` (the bonding driver's mode name)."""
        ...

    def links(self) -> list[Link]:
        """Every device of the namespace (one dump: ``host apply`` reads the host once)."""
        ...

    def set_address(self, name: str, address: str) -> None:
        """Set the device's MAC address."""
        ...

    def update(self, name: str, *, mtu: int | None = None, up: bool | None = None,
               group: int | None = None, index: int | None = None) -> None:
        """Set any of MTU, up/down and link group in one request (by index when given)."""
        ...

    def set_master(self, name: str, master: int | None) -> None:
        """Make ``name`` a port of the bridge whose index is ``master`` (``None``: of none)."""
        ...

    def delete(self, name: str) -> bool:
        """Delete ``name`` (a veth's peer goes with it); ``False`` when it did not exist."""
        ...

    def delete_group(self, group: int) -> None:
        """Delete every device in link group ``group`` in one request (ENODEV: none is)."""
        ...

    def ipv6_disabled(self, name: str) -> bool | None:
        """``net.ipv6.conf.<name>.disable_ipv6``, or ``None`` (no IPv6 here, or no device)."""
        ...

    def disable_ipv6(self, name: str, disabled: bool = True) -> None:
        """Set ``net.ipv6.conf.<name>.disable_ipv6`` (nothing when there is none)."""
        ...

    def port_state(self, name: str) -> int | None:
        """The Linux bridge port state of ``name`` (3: forwarding; see :data:`PORT_STATES`), or
        ``None`` when it is no bridge port (or does not exist)."""
        ...

    def port_isolated(self, name: str) -> bool | None:
        """Whether the Linux bridge port ``name`` is isolated (IFLA_BRPORT_ISOLATED: it
        forwards to no other isolated port), or ``None`` when it is no bridge port."""
        ...

    def events(self) -> socket.socket | None:
        """A socket that becomes readable when a net device changes (the caller reads and
        discards what it receives, and closes it); ``None``: no such events to wait on."""
        ...

    def close(self) -> None:
        """Release the socket (the next request opens another)."""
        ...


class Pyroute2Netlink:
    """:class:`Netlink` over a lazily opened rtnetlink socket in ``netns`` (``None``: this
    process's namespace)."""

    def __init__(self, netns: str | None = None) -> None:
        check_netns(netns)
        self.netns = netns
        self._ipr: Any = None
        #: Look-ups, and the changes plugs make most (MTU/up/group, master), go over a raw
        #: socket of their own, encoded and decoded here (:class:`_Rtnl`); creating and
        #: deleting devices over pyroute2's.
        self._rtnl: _Rtnl | None = None
        #: The thread in ``netns`` that opens sockets there, makes TAPs and writes sysctls.
        self._netns_thread = None if netns is None else _NetnsThread(netns)
        self._opening = threading.Lock()

    def _in_netns(self, work: Callable[[], _T]) -> _T:
        """``work`` run in the namespace (by the thread kept there), or here without one."""
        return work() if self._netns_thread is None else self._netns_thread.run(work)

    @property
    def ipr(self) -> Any:
        if self._ipr is None:
            from pyroute2 import IPRoute

            if self.netns is None:
                self._ipr = IPRoute()
            else:
                # Not IPRoute(netns=...): pyroute2 would fork this whole process to open the
                # socket there (and again per TAP), and a fork of a process with threads and
                # signal handlers (ovsdbapp's, a service's) can deadlock or run the parent's
                # code. A socket opened by a thread that entered the namespace belongs to it.
                sock = self._in_netns(lambda: socket.socket(
                    socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_ROUTE))
                self._ipr = IPRoute(fileno=sock.detach())
            core = getattr(self._ipr, "asyncore", None)
            if core is not None:
                # pyroute2 0.9's IPRoute.__init__ does not run NetlinkSocket.__init__, the one
                # place that sets this, so IPRoute.nlm_request (which _get_link needs) raises
                # KeyError('nlm_generator') without it. False: replies as a tuple, read to the
                # end before the call returns.
                core.status["nlm_generator"] = False
        return self._ipr

    @property
    def rtnl(self) -> _Rtnl:
        if self._rtnl is None:
            with self._opening:
                if self._rtnl is None:
                    self._rtnl = _Rtnl(self._in_netns(lambda: socket.socket(
                        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                        _NETLINK_ROUTE)))
        return self._rtnl

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None
        if self._rtnl is not None:
            self._rtnl.close()
            self._rtnl = None
        if self._netns_thread is not None:
            self._netns_thread.close()

    # --- reading ---

    def get(self, name: str) -> Link | None:
        """One request for the name: a dump of the namespace would cost more as soon as it
        holds a few hundred devices."""
        found = self.rtnl.link(name=name)
        return None if found is None else found[0]

    def port_state(self, name: str) -> int | None:
        """From the device's own RTM_NEWLINK (a bridge port's IFLA_INFO_SLAVE_DATA), one
        request: not pyroute2's ``brport("show")``, which dumps every port of every bridge
        (at 500 hybrid VIFs, 500 messages decoded per call: ~0.1 s)."""
        found = self.rtnl.link(name=name)
        if found is None or found[0].master is None:
            return None
        return found[1]

    def port_isolated(self, name: str) -> bool | None:
        """From the same RTM_NEWLINK as :meth:`port_state` (IFLA_BRPORT_ISOLATED)."""
        found = self.rtnl.link(name=name)
        if found is None or found[0].master is None:
            return None
        return found[2]

    def events(self) -> socket.socket | None:
        def listen() -> socket.socket:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                 _NETLINK_ROUTE)
            sock.bind((0, _RTMGRP_LINK))
            sock.setblocking(False)
            return sock

        return self._in_netns(listen)

    def name_of(self, index: int) -> str | None:
        found = self.rtnl.link(index=index)
        return None if found is None else found[0].name

    def _get_link(self, *, name: str | None = None, index: int = 0) -> Any | None:
        """The RTM_NEWLINK the kernel answers an RTM_GETLINK for one device with (by index, or
        by name when ``index`` is 0), as pyroute2 decodes it, or ``None`` when there is no such
        device (ENODEV). Not used by the operations (:class:`_Rtnl` answers them, ~10x
        faster): kept to compare the two decodings in tests.

        Sent with NLM_F_REQUEST alone, not as ``ipr.link("get", ...)``, which leaks. pyroute2
        0.9.7 sends that with NLM_F_REQUEST | NLM_F_ACK (``NetlinkRequest.flags["get"]``), so
        the kernel answers a look-up that succeeds twice: the RTM_NEWLINK, then an ACK
        (NLMSG_ERROR, error 0) in a datagram of its own. pyroute2's reader
        (``AsyncCoreSocket.get``) stops at the first message without NLM_F_MULTI, the
        RTM_NEWLINK, and ``NetlinkRequest.response()`` then frees that sequence number's queue
        (``CoreMessageQueue.free_tag``); the ACK, read from the socket after that, goes to the
        queue of messages nobody waits for (``msg_queue.queues[0]``), which nothing reads while
        the socket lives. One message left per look-up: 20,000 look-ups left 20,001 queued and
        +33 MB of RSS; a long-lived Host (~10 look-ups per hybrid plug) grew without bound.

        Without NLM_F_ACK the kernel sends the reply alone, or one NLMSG_ERROR when the look-up
        fails (``netlink_rcv_skb`` acks only when asked to or on error), so the conversation
        ends where pyroute2 stops reading. Every other request here (RTM_NEWLINK, RTM_DELLINK,
        with NLM_F_ACK) is answered by the ACK alone, which pyroute2 reads as the answer:
        nothing is left (tests/functional/test_endurance.py checks every operation)."""
        from pyroute2 import NetlinkError
        from pyroute2.netlink import NLM_F_REQUEST
        from pyroute2.netlink.rtnl import RTM_GETLINK
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

        request = ifinfmsg()
        request["index"] = index
        if name is not None:
            request["attrs"] = [("IFLA_IFNAME", name)]
        try:
            replies = tuple(self.ipr.nlm_request(request, msg_type=RTM_GETLINK,
                                                 msg_flags=NLM_F_REQUEST))
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise
        return replies[0]

    # --- changing (each one request; errors propagate as pyroute2's NetlinkError) ---

    def add_bridge(self, name: str, *, forward_delay: int | None, ageing_time: int | None) -> None:
        self.ipr.link("add", ifname=name, kind="bridge",
                      **_bridge_attrs(forward_delay, ageing_time))

    def set_bridge(self, name: str, *, forward_delay: int | None, ageing_time: int | None) -> None:
        attrs = _bridge_attrs(forward_delay, ageing_time)
        if attrs:
            self.ipr.link("set", ifname=name, kind="bridge", **attrs)

    def add_veth(self, name: str, peer: str) -> None:
        self.ipr.link("add", ifname=name, kind="veth", peer={"ifname": peer})

    def add_vlan(self, name: str, parent: str, vlan: int) -> None:
        parent_link = self.get(parent)
        if parent_link is None:
            raise HostError(f"VLAN parent {parent} does not exist", device=parent)
        self.ipr.link("add", ifname=name, kind="vlan", link=parent_link.index, vlan_id=vlan)

    def add_tap(self, name: str, *, multi_queue: bool) -> None:
        """Made with the tun driver's own ioctls (a TAP cannot be created over rtnetlink), from
        a thread in the namespace when there is one: /dev/net/tun makes the device in the
        opener's namespace."""
        flags = _IFF_TAP | _IFF_NO_PI | _IFF_VNET_HDR | (_IFF_MULTI_QUEUE if multi_queue else 0)
        self._in_netns(lambda: _make_tap(name, flags))

    def add_bond(self, name: str, mode: str) -> None:
        self.ipr.link("add", ifname=name, kind="bond", bond_mode=BOND_MODES.index(mode))

    def links(self) -> list[Link]:
        return [_link(message) for message in self.ipr.get_links()]

    def set_address(self, name: str, address: str) -> None:
        self.ipr.link("set", ifname=name, address=address)

    def update(self, name: str, *, mtu: int | None = None, up: bool | None = None,
               group: int | None = None, index: int | None = None) -> None:
        """RTM_SETLINK, as pyroute2's ``link("set", ...)`` sends it (by index when given, else
        by name; IFLA_MTU, IFLA_GROUP, IFF_UP in the flags it changes)."""
        if (mtu, up, group) == (None, None, None):
            return
        attrs = b"" if index is not None else _attr(_IFLA_IFNAME, name.encode() + b"\0")
        if mtu is not None:
            attrs += _attr(_IFLA_MTU, _U32.pack(mtu))
        if group is not None:
            attrs += _attr(_IFLA_GROUP, _U32.pack(group))
        self.rtnl.set_link(index or 0, attrs, up=up)

    def set_master(self, name: str, master: int | None) -> None:
        self.rtnl.set_link(0, _attr(_IFLA_IFNAME, name.encode() + b"\0")
                           + _attr(_IFLA_MASTER, _U32.pack(master or 0)))

    def delete(self, name: str) -> bool:
        from pyroute2 import NetlinkError

        try:
            self.ipr.link("del", ifname=name)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return False
            raise
        return True

    def delete_group(self, group: int) -> None:
        self.ipr.link("del", group=group)

    # --- sysctl (per namespace) ---

    def ipv6_disabled(self, name: str) -> bool | None:
        value = self._sysctl(name, None)
        return None if value is None else value.strip() == "1"

    def disable_ipv6(self, name: str, disabled: bool = True) -> None:
        self._sysctl(name, "1" if disabled else "0")

    def _sysctl(self, name: str, write: str | None) -> str | None:
        path = f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6"
        # /proc/sys/net is the calling thread's namespace: done by the thread kept there.
        return self._in_netns(lambda: _read_or_write(path, write))


_T = TypeVar("_T")

# <linux/netlink.h>, <linux/if_tun.h>
_NETLINK_ROUTE = 0
_TUNSETIFF = 0x400454CA
_TUNSETPERSIST = 0x400454CB
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000
_IFF_VNET_HDR = 0x4000
_IFF_MULTI_QUEUE = 0x0100


class _NetnsThread:
    """One thread that entered ``netns`` (setns(2) moves only the calling thread) and runs what
    must happen there — opening sockets, the tun ioctls, /proc/sys/net — for the callers, one
    job at a time, until :meth:`close`. Started on the first job: a batch of 500 TAPs or qbrs
    enters the namespace once, not once per device (~0.2 ms each for a thread of its own)."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._pid = os.getpid()

    def run(self, work: Callable[[], _T]) -> _T:
        job = _Job(work)
        with self._lock:
            if self._pid != os.getpid():  # a forked child has no copy of the thread
                self._thread, self._jobs, self._pid = None, queue.SimpleQueue(), os.getpid()
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, args=(self._jobs,),
                                                name=f"vifplug-netns-{self.netns}", daemon=True)
                self._thread.start()
            self._jobs.put(job)
        job.done.wait()
        if job.failure is not None:
            raise job.failure
        result: _T = job.result
        return result

    def _serve(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        try:
            _enter_netns(self.netns)
        except BaseException as exc:  # every job queued so far fails with it; the next starts
            with self._lock:          # a thread again
                self._thread, self._jobs = None, queue.SimpleQueue()
            while True:
                try:
                    job = jobs.get_nowait()
                except queue.Empty:
                    return
                if job is not None:
                    job.failure = exc
                    job.done.set()
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                job.result = job.work()
            except BaseException as exc:  # handed to the calling thread
                job.failure = exc
            job.done.set()

    def close(self) -> None:
        """End the thread (after the jobs queued); the next job starts another."""
        with self._lock:
            thread, self._thread = self._thread, None
            jobs, self._jobs = self._jobs, queue.SimpleQueue()
        if thread is not None:
            jobs.put(None)
            if thread is not threading.current_thread():
                thread.join()


def run_in_netns(netns: str | None, work: Callable[[], _T]) -> _T:
    """``work()`` once, in ``netns`` (by a thread that enters it and ends), or here when
    ``None``."""
    if netns is None:
        return work()
    thread = _NetnsThread(netns)
    try:
        return thread.run(work)
    finally:
        thread.close()


class _Job:
    def __init__(self, work: Callable[[], Any]) -> None:
        self.work = work
        self.done = threading.Event()
        self.result: Any = None
        self.failure: BaseException | None = None


def _make_tap(name: str, flags: int) -> None:
    import fcntl

    request = struct.pack("16sH22x", name.encode(), flags)
    with open("/dev/net/tun", "rb", buffering=0) as tun:
        try:
            fcntl.ioctl(tun, _TUNSETIFF, request)
        except OSError as exc:
            raise _netlink_error(exc) from exc
        fcntl.ioctl(tun, _TUNSETPERSIST, 1)


def _netlink_error(exc: OSError) -> Exception:
    """The tun ioctls fail with OSError; callers handle pyroute2's NetlinkError (EEXIST)."""
    from pyroute2 import NetlinkError

    error: Exception = NetlinkError(exc.errno or 0, exc.strerror or str(exc))
    return error


def _bridge_attrs(forward_delay: int | None, ageing_time: int | None) -> dict[str, int]:
    """The bridge settings given (centiseconds, as the kernel takes them)."""
    attrs = {}
    if forward_delay is not None:
        attrs["br_forward_delay"] = forward_delay
    if ageing_time is not None:
        attrs["br_ageing_time"] = ageing_time
    return attrs


def _read_or_write(path: str, write: str | None) -> str | None:
    try:
        if write is None:
            with open(path) as handle:
                return handle.read()
        with open(path, "w") as handle:
            handle.write(write)
    except FileNotFoundError:
        return None
    return write


def _enter_netns(name: str) -> None:
    """setns(2) for the calling thread only (the thread then ends: nothing else is affected)."""
    from pyroute2 import netns

    netns.setns(name, flags=0)  # raises OSError when it cannot


# <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>
_NLMSG_ERROR = 2
_RTM_NEWLINK, _RTM_GETLINK, _RTM_SETLINK = 16, 18, 19
_NLM_F_REQUEST, _NLM_F_ACK = 1, 4
_IFLA_ADDRESS, _IFLA_IFNAME, _IFLA_MTU, _IFLA_LINK, _IFLA_MASTER = 1, 3, 4, 5, 10
_IFLA_LINKINFO, _IFLA_GROUP, _IFLA_EXT_MASK = 18, 27, 29
_IFLA_INFO_KIND, _IFLA_INFO_DATA, _IFLA_INFO_SLAVE_KIND, _IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
_IFLA_BR_FORWARD_DELAY, _IFLA_BR_AGEING_TIME = 1, 4
_IFLA_TUN_PI, _IFLA_TUN_VNET_HDR, _IFLA_TUN_MULTI_QUEUE = 4, 5, 7
_IFLA_BRPORT_STATE, _IFLA_BRPORT_ISOLATED = 1, 33
_RTEXT_FILTER_SKIP_STATS = 1 << 3
_NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_U32 = struct.Struct("=I")
_ATTR = struct.Struct("=HH")
_IFF_UP = 1


class _Rtnl:
    """A raw rtnetlink socket of vifplug's own, its requests encoded and its answers decoded
    here, for what plugs do most: look up one device (RTM_GETLINK), and change one device's
    MTU, up/down, link group or master (RTM_SETLINK). pyroute2 decodes every attribute of every
    message into objects and runs each request through an event loop: ~0.2 ms per request
    before the kernel does anything, ~0.65 ms to look up a bridge; here, a few microseconds.

    Each request is answered by exactly one datagram, read before the next is sent: a look-up,
    sent with NLM_F_REQUEST alone (see :meth:`Pyroute2Netlink._get_link`), by the RTM_NEWLINK
    or by one NLMSG_ERROR when there is no such device; a change, sent with NLM_F_ACK, by the
    NLMSG_ERROR that is its ACK (error 0) or its error. Nothing is left on the socket; datagrams
    of an earlier sequence number (a request interrupted between sending and reading) are
    skipped. One request at a time (a lock): threads share a Host."""

    BUFFER = 1 << 16

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.settimeout(30)  # the kernel answers before send() returns; never wait forever
        self._buffer = bytearray(self.BUFFER)
        self._sequence = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.sock.close()

    def link(self, *, name: str | None = None, index: int = 0
             ) -> tuple[Link, int | None, bool | None] | None:
        """The device (by index, or by name when ``index`` is 0) and, for a Linux bridge port,
        its port state and whether it is isolated; ``None`` when there is none (ENODEV)."""
        attrs = b"" if name is None else _attr(_IFLA_IFNAME, name.encode() + b"\0")
        attrs += _attr(_IFLA_EXT_MASK, _U32.pack(_RTEXT_FILTER_SKIP_STATS))
        found = self._request(_RTM_GETLINK, _NLM_F_REQUEST,
                              _IFINFO.pack(socket.AF_UNSPEC, 0, index, 0, 0) + attrs, name)
        return None if found is None else _decode_link(*found)

    def set_link(self, index: int, attrs: bytes, *, up: bool | None = None) -> None:
        """RTM_SETLINK of the device ``index`` (0: the one IFLA_IFNAME in ``attrs`` names);
        ``up``: set or clear IFF_UP. Errors raise pyroute2's ``NetlinkError``, ENODEV too."""
        flags = _IFF_UP if up else 0
        change = 0 if up is None else _IFF_UP
        self._request(_RTM_SETLINK, _NLM_F_REQUEST | _NLM_F_ACK,
                      _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change) + attrs, None,
                      missing_ok=False)

    def _request(self, kind: int, flags: int, body: bytes, name: str | None, *,
                 missing_ok: bool = True) -> tuple[bytes, int, int] | None:
        """Send one request; its answer: an RTM_NEWLINK as (data, payload start, end), or
        ``None`` (an ACK; ENODEV when ``missing_ok``). Other errors raise ``NetlinkError``."""
        with self._lock:
            self._sequence = self._sequence % 0xFFFFFFFF + 1
            sequence = self._sequence
            self.sock.send(_HEADER.pack(_HEADER.size + len(body), kind, flags, sequence, 0)
                           + body)
            while True:
                size = self.sock.recv_into(self._buffer, 0, socket.MSG_TRUNC)
                if size > len(self._buffer):
                    raise HostError(f"a netlink answer of {size} bytes did not fit in "
                                    f"{len(self._buffer)}", device=name)
                data = bytes(memoryview(self._buffer)[:size])
                offset = 0
                while offset + _HEADER.size <= size:
                    length, answer, _, seq, _ = _HEADER.unpack_from(data, offset)
                    if length < _HEADER.size:
                        break
                    if seq == sequence:
                        if answer == _NLMSG_ERROR:
                            code = -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
                            if code == 0 or (code == errno.ENODEV and missing_ok):
                                return None
                            raise _netlink_error(OSError(code, os.strerror(code)))
                        if answer == _RTM_NEWLINK:
                            return data, offset + _HEADER.size, offset + length
                    offset += (length + 3) & ~3


def _attr(kind: int, payload: bytes) -> bytes:
    length = _ATTR.size + len(payload)
    return _ATTR.pack(length, kind) + payload + b"\0" * (-length & 3)


def _attrs(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    """The attributes between ``start`` and ``end``: type → (payload start, payload end)."""
    found = {}
    while start + _ATTR.size <= end:
        length, kind = _ATTR.unpack_from(data, start)
        if length < _ATTR.size:
            break
        found[kind & _NLA_TYPE_MASK] = (start + _ATTR.size, start + length)
        start += (length + 3) & ~3
    return found


def _decode_link(data: bytes, start: int, end: int
                 ) -> tuple[Link, int | None, bool | None]:
    """An RTM_NEWLINK's payload as a :class:`Link`, and its bridge port state and isolation
    (if it is a bridge port)."""
    _, _, index, flags, _ = _IFINFO.unpack_from(data, start)
    top = _attrs(data, start + _IFINFO.size, end)

    def u32(attrs: dict[int, tuple[int, int]], kind: int) -> int | None:
        where = attrs.get(kind)
        return None if where is None else int(_U32.unpack_from(data, where[0])[0])

    def u8(attrs: dict[int, tuple[int, int]], kind: int) -> int | None:
        where = attrs.get(kind)
        return None if where is None else data[where[0]]

    def text(attrs: dict[int, tuple[int, int]], kind: int) -> str | None:
        where = attrs.get(kind)
        return None if where is None else \
            data[where[0]:where[1]].split(b"\0", 1)[0].decode(errors="replace")

    def nested(attrs: dict[int, tuple[int, int]], kind: int) -> dict[int, tuple[int, int]]:
        where = attrs.get(kind)
        return {} if where is None else _attrs(data, *where)

    info = nested(top, _IFLA_LINKINFO)
    kind = text(info, _IFLA_INFO_KIND)
    forward_delay = ageing_time = None
    tun_flags = None
    if kind == "bridge":
        bridge = nested(info, _IFLA_INFO_DATA)
        forward_delay = u32(bridge, _IFLA_BR_FORWARD_DELAY)
        ageing_time = u32(bridge, _IFLA_BR_AGEING_TIME)
    elif kind == "tun":
        tun = nested(info, _IFLA_INFO_DATA)
        tun_flags = (u8(tun, _IFLA_TUN_PI) == 0, u8(tun, _IFLA_TUN_VNET_HDR) == 1,
                     u8(tun, _IFLA_TUN_MULTI_QUEUE) == 1)
    port_state = isolated = None
    if text(info, _IFLA_INFO_SLAVE_KIND) == "bridge":
        port = nested(info, _IFLA_INFO_SLAVE_DATA)
        port_state = u8(port, _IFLA_BRPORT_STATE)
        flag = u8(port, _IFLA_BRPORT_ISOLATED)
        isolated = None if flag is None else flag == 1
    link = Link(
        index=index,
        name=text(top, _IFLA_IFNAME) or "",
        kind=kind,
        mtu=u32(top, _IFLA_MTU) or 0,
        up=bool(flags & _IFF_UP),
        master=u32(top, _IFLA_MASTER) or None,
        link=u32(top, _IFLA_LINK) or None,
        group=u32(top, _IFLA_GROUP) or 0,
        forward_delay=forward_delay,
        ageing_time=ageing_time,
        tun_flags=tun_flags,
        address=_mac(data, top.get(_IFLA_ADDRESS)),
        port_isolated=isolated,
    )
    return link, port_state, isolated


def _mac(data: bytes, where: tuple[int, int] | None) -> str | None:
    return None if where is None else data[where[0]:where[1]].hex(":")


def _link(message: Any) -> Link:
    kind = message.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    tun_flags = None
    forward_delay = ageing_time = None
    if kind == "bridge":
        forward_delay = message.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA",
                                           "IFLA_BR_FORWARD_DELAY")
        ageing_time = message.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA",
                                         "IFLA_BR_AGEING_TIME")
    elif kind == "tun":
        data = message.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA")
        tun = dict(data["attrs"]) if data else {}
        tun_flags = (tun.get("IFLA_TUN_PI") == 0, tun.get("IFLA_TUN_VNET_HDR") == 1,
                     tun.get("IFLA_TUN_MULTI_QUEUE") == 1)
    isolated = None
    if message.get_nested("IFLA_LINKINFO", "IFLA_INFO_SLAVE_KIND") == "bridge":
        flag = message.get_nested("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA",
                                  "IFLA_BRPORT_ISOLATED")
        isolated = None if flag is None else bool(flag)
    return Link(
        index=message["index"],
        name=message.get("ifname"),
        kind=kind,
        mtu=message.get("mtu"),
        up=bool(message["flags"] & 1),  # IFF_UP
        master=message.get("master") or None,
        link=message.get("link") or None,
        group=message.get("group") or 0,
        forward_delay=forward_delay,
        ageing_time=ageing_time,
        tun_flags=tun_flags,
        address=message.get("address"),
        port_isolated=isolated,
    )

"""NIC pools: which NIC of a ``direct`` network's pool each guest interface has on this host.

A ``direct`` network may list ``interfaces = ["eth10", "eth11", ...]`` instead of one
``interface``. In ``passthrough`` mode and with an 802.1Qbh profile, a NIC serves one guest
interface at a time (``DirectNetwork.exclusive``); in the shared modes (vepa, bridge, private)
the least-used NIC is chosen (ties: the pool's order). Allocations live in a state file
(:data:`DEFAULT_STATE`, ``VIFPLUG_POOLS`` overrides it):

    {"format": 1, "networks": {"green": {"eth10": [{"domain": "a", "mac": "fa:16:..."}]}}}

- every change is made under an exclusive lock (``fcntl.flock`` on ``<state>.lock``) held from
  reading to writing, so processes allocating at once (two incoming migrations, the hook and a
  plug) never hand one exclusive NIC out twice;
- the file is replaced atomically (a temporary file in the same directory, fsynced, renamed
  over it, the directory fsynced): a crash leaves the old file or the new one, never half of
  one; a crash before the rename leaves the allocation unmade (the guest did not get the NIC);
- the qemu hook allocates on an incoming migration or restore and frees a guest's NICs on its
  ``release`` operation (the guest stopped, or left by migration); it never calls libvirt.
  ``vifplug pools rebuild`` makes the file again from the running guests (libvirt, read-only):
  when it is missing or disagrees with them (after a crash or a reboot).

Light (the hook imports it): the standard library and the map's types.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple

from vifplug.errors import VifplugError
from vifplug.files import replace_durably
from vifplug.netmap import DirectNetwork, NetworkMap
from vifplug.spec import POOLS_STATE

__all__ = ["DEFAULT_STATE", "Holder", "PoolExhausted", "PoolState", "allocate", "amend",
           "describe", "load", "locked", "pooled", "rebuild", "release", "save", "state_path"]

DEFAULT_STATE = POOLS_STATE
FORMAT = 1


class PoolExhausted(VifplugError):
    """No NIC of the pool can take another guest interface."""


class Holder(NamedTuple):
    """A guest interface holding a NIC: its domain's name and its MAC."""

    domain: str
    mac: str


class PoolState:
    """Who holds which NIC, per network (pure: no file)."""

    __hash__ = None  # type: ignore[assignment]  # mutable: compared by value, never hashed

    def __init__(self, networks: Mapping[str, Mapping[str, Iterable[Holder]]] | None = None):
        self.networks: dict[str, dict[str, list[Holder]]] = {
            name: {nic: list(holders) for nic, holders in nics.items()}
            for name, nics in (networks or {}).items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PoolState) and self._canonical() == other._canonical()

    def __repr__(self) -> str:
        return f"PoolState({self._canonical()!r})"

    def _canonical(self) -> dict[str, dict[str, list[Holder]]]:
        return {name: {nic: sorted(holders) for nic, holders in sorted(nics.items()) if holders}
                for name, nics in sorted(self.networks.items())
                if any(nics.values())}

    def holding(self, network: str, holder: Holder) -> str | None:
        for nic, holders in self.networks.get(network, {}).items():
            if holder in holders:
                return nic
        return None

    def choose(self, network: DirectNetwork, holder: Holder) -> str:
        """The NIC ``holder`` gets (the one it holds already, if any), recorded. Raises
        :class:`PoolExhausted` naming every NIC and who holds it."""
        held = self.holding(network.name, holder)
        if held is not None and held in network.nics:
            return held
        if held is not None:  # a NIC the map no longer lists: let it go
            self._drop(network.name, holder)
        nics = self.networks.setdefault(network.name, {})
        load = {nic: len(nics.get(nic, [])) for nic in network.nics}
        free = [nic for nic in network.nics if not (network.exclusive and load[nic])]
        if not free:
            taken = ", ".join(f"{nic} ({', '.join(sorted({h.domain for h in nics[nic]}))})"
                              for nic in network.nics)
            raise PoolExhausted(f"pool of network {network.name} exhausted: {taken}")
        nic = min(free, key=lambda name: (load[name], network.nics.index(name)))
        nics.setdefault(nic, []).append(holder)
        return nic

    def release(self, domain: str, macs: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """Free every NIC ``domain``'s interfaces (those with ``macs`` only, if given) hold;
        (network, NIC) of each freed."""
        freed = []
        only = None if macs is None else {mac.lower() for mac in macs}
        for network, nics in self.networks.items():
            for nic, holders in nics.items():
                kept = [h for h in holders if h.domain != domain
                        or (only is not None and h.mac.lower() not in only)]
                if len(kept) != len(holders):
                    freed.append((network, nic))
                    nics[nic] = kept
        return freed

    def _drop(self, network: str, holder: Holder) -> None:
        for holders in self.networks.get(network, {}).values():
            if holder in holders:
                holders.remove(holder)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "networks": {
            name: {nic: [h._asdict() for h in holders] for nic, holders in nics.items()}
            for name, nics in self._canonical().items()}}, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str = "pools.json") -> PoolState:
        try:
            data = json.loads(text)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
            networks = {str(name): {str(nic): [Holder(str(h["domain"]), str(h["mac"]))
                                                for h in holders]
                                    for nic, holders in nics.items()}
                        for name, nics in data["networks"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise VifplugError(f"{where}: not a vifplug pool state ({exc}); "
                               "`vifplug pools rebuild` makes it again from the running "
                               "guests") from None
        return cls(networks)


def state_path(path: str | None = None) -> str:
    return path or os.environ.get("VIFPLUG_POOLS") or DEFAULT_STATE


@contextlib.contextmanager
def locked(path: str | None = None) -> Iterator[str]:
    """The state file's exclusive lock, held for the block (across processes)."""
    where = state_path(path)
    os.makedirs(os.path.dirname(where) or ".", mode=0o700, exist_ok=True)
    fd = os.open(where + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield where
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def load(path: str) -> PoolState:
    """The state in ``path`` (empty when there is no file)."""
    try:
        with open(path) as handle:
            return PoolState.from_json(handle.read(), path)
    except FileNotFoundError:
        return PoolState()


def save(path: str, state: PoolState) -> None:
    """Replace ``path`` with ``state`` atomically and durably."""
    replace_durably(path, state.to_json())


def allocate(network: DirectNetwork, holder: Holder, path: str | None = None) -> str:
    """The NIC of ``network``'s pool for ``holder``, recorded in the state file (locked)."""
    with locked(path) as where:
        state = load(where)
        before = state.to_json()
        nic = state.choose(network, holder)
        if state.to_json() != before:
            save(where, state)
        return nic


def release(domain: str, path: str | None = None,
            macs: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Free ``domain``'s NICs (its interfaces with ``macs`` only, if given) in the state file;
    (network, NIC) of each freed. Nothing to do (and no file made) when there is no state
    file."""
    where = state_path(path)
    if not os.path.exists(where):
        return []
    with locked(where):
        state = load(where)
        freed = state.release(domain, macs)
        if freed:
            save(where, state)
        return freed


def amend(release: Iterable[tuple[str, str, Holder]] = (),
          record: Iterable[tuple[str, str, Holder]] = (), path: str | None = None) -> int:
    """Drop the ``release`` holdings and add the ``record`` ones, each (network, NIC, holder),
    under the lock, to the file as it is now (a holding already gone or already there is left
    as it is); how many changed. ``vifplug gc``'s pool repairs."""
    with locked(path) as where:
        state = load(where)
        changed = 0
        for network, nic, holder in release:
            holders = state.networks.get(network, {}).get(nic, [])
            if holder in holders:
                holders.remove(holder)
                changed += 1
        for network, nic, holder in record:
            holders = state.networks.setdefault(network, {}).setdefault(nic, [])
            if holder not in holders:
                holders.append(holder)
                changed += 1
        if changed:
            save(where, state)
        return changed


def rebuild(domains: Iterable[tuple[str, str]], host_map: NetworkMap) -> PoolState:
    """The state as the running guests show it: ``domains`` are (name, live XML); each vifplug
    interface on a pooled network holds the pool NIC its ``<source dev>`` names."""
    from vifplug.hook import interface_networks, parse_domain

    state = PoolState()
    for name, xml in domains:
        for mac, network_name, iface in interface_networks(parse_domain(xml)):
            source = iface.find("source")
            dev = source.get("dev") if source is not None else None
            if iface.get("type") != "direct":
                continue
            for network in host_map.definitions(network_name):  # its options' pools too
                if isinstance(network, DirectNetwork) and network.pool and dev in network.pool:
                    state.networks.setdefault(network_name, {}).setdefault(dev, []).append(
                        Holder(name, mac))
    return state


def pooled(host_map: NetworkMap) -> list[DirectNetwork]:
    """Every pooled definition (a network's, or one of its options')."""
    return [n for n in host_map.every_definition().values()
            if isinstance(n, DirectNetwork) and n.pool]


def describe(state: PoolState, host_map: NetworkMap) -> list[str]:
    """One line per pool NIC: who holds it."""
    lines = []
    for network in sorted(pooled(host_map), key=lambda n: (n.name, n.option or 0)):
        nics = state.networks.get(network.name, {})
        for nic in network.nics:
            holders = nics.get(nic, [])
            who = ", ".join(f"{h.domain} ({h.mac})" for h in sorted(holders)) or "free"
            lines.append(f"{network.name} {nic}: {who}")
    return lines

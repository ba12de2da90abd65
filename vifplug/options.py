"""Priority lists per network (``[[networks.NAME.options]]``): the rules a list obeys, checked
when the map loads.

A network may list several connection options, each a full switch definition; the hook (and
``render``/``plug --networks``) take the first one the guest can use here and now
(:func:`vifplug.hook.rewrite`). An option is *usable* for a guest interface when:

1. the guest carries the identities it needs: an OVN option an OVS ``interfaceid`` (the logical
   switch port to bind); an option whose chosen port profile is 802.1Qbg an ``instanceid`` (the
   VSI instance the switch associates; libvirt would otherwise invent a new one on every host);
2. the portgroup the guest names exists in it (else its default portgroup applies);
3. the merge rule (:mod:`vifplug.merge`) finds no conflict between the guest's requests and it;
4. a pool (``interfaces = [...]``) in passthrough mode or with an 802.1Qbh profile has a NIC no
   other guest holds, per this host's pools' state file.

Nothing else counts: not where the guest comes from nor what its XML carries on arrival (its
source type, the device it was on), nor whether the devices exist (``hook check`` and the
hook's strict checks test that after the choice).

The loader refuses (``file:line: networks.NAME.options[N]...``):

- a NIC in two pools (options of one network, or two networks): one state file entry per NIC;
- an option that can never be taken, because an earlier one of its list :func:`covers` it.
"""

from __future__ import annotations

from collections.abc import Mapping

from vifplug.netmap import (
    DirectNetwork,
    MappedNetwork,
    MapRuleError,
    NetworkMap,
    OvnNetwork,
    definition_key,
    table_of,
)

__all__ = ["check", "covers", "needs", "possible_needs"]


def check(definitions: Mapping[str, MappedNetwork]) -> None:
    """The rules of the module doc across every definition (by
    :func:`vifplug.netmap.definition_key`). Raises :class:`MapRuleError` naming the key."""
    _check_pools(definitions)
    lists: dict[str, list[MappedNetwork]] = {}
    for network in definitions.values():
        if network.option is not None:
            lists.setdefault(network.name, []).append(network)
    for options in lists.values():
        for later, option in enumerate(options):
            for earlier in options[:later]:
                reason = covers(earlier, option)
                if reason is not None:
                    raise MapRuleError(table_of(option), f"can never be taken: options"
                                       f"[{earlier.option}] takes every guest it would "
                                       f"({reason}); put the more demanding option first")


def _check_pools(definitions: Mapping[str, MappedNetwork]) -> None:
    """A pool's NIC is in no other pool and is no other direct definition's ``interface``
    (the pools' state holds one entry per NIC, by network)."""
    owner: dict[str, MappedNetwork] = {}
    for network in definitions.values():
        if isinstance(network, DirectNetwork) and network.pool:
            for nic in network.pool:
                first = owner.setdefault(nic, network)
                if first is not network:
                    raise MapRuleError((*table_of(network), "interfaces"), f"NIC {nic} is in "
                                       f"the pool of {_name(first)} already: a NIC is in one "
                                       "pool at most")
    for network in definitions.values():
        if isinstance(network, DirectNetwork) and not network.pool \
                and network.interface in owner:
            raise MapRuleError((*table_of(network), "interface"), f"NIC {network.interface} "
                               f"is in the pool of {_name(owner[network.interface])}: a pool's "
                               "NICs are its own")


def _name(network: MappedNetwork) -> str:
    key = definition_key(network)
    return f"network {network.name}" + (f" ({key.removeprefix(network.name + '.')})"
                                        if network.option is not None else "")


def needs(network: MappedNetwork) -> frozenset[str]:
    """The identities every guest using ``network`` must carry."""
    if isinstance(network, OvnNetwork):
        return frozenset({"interfaceid"})
    if isinstance(network, DirectNetwork) and network.qbg is not None:
        return frozenset({"instanceid"})
    return frozenset()


def possible_needs(network: MappedNetwork) -> frozenset[str]:
    """The identities some guest using ``network`` must carry (one of its portgroups may
    give 802.1Qbg)."""
    found = set(needs(network))
    if isinstance(network, DirectNetwork) and any(g.qbg is not None for g in network.portgroups):
        found.add("instanceid")
    return frozenset(found)


def covers(earlier: MappedNetwork, later: MappedNetwork) -> str | None:
    """Why ``earlier`` is usable by every guest interface that could use ``later`` (so
    ``later`` is never taken), or None when some guest could take ``later``. Sufficient
    conditions, all of them:

    - ``earlier`` is not a pool that can fill (passthrough or 802.1Qbh);
    - every identity some guest of ``earlier`` needs, every guest of ``later`` needs too;
    - both have the same portgroups (names, settings, default): a portgroup one lacks refuses
      guests naming it;
    - ``earlier`` overrides, or each host parameter it gives (VLAN, port profile, bandwidth,
      trust) ``later`` gives alike without overriding: a guest in conflict with ``earlier`` is
      in conflict with ``later``.
    """
    from vifplug.merge import host_layers

    if isinstance(earlier, DirectNetwork) and earlier.pool and earlier.exclusive:
        return None
    if not possible_needs(earlier) <= needs(later):
        return None
    if earlier.portgroups != later.portgroups \
            or earlier.default_portgroup != later.default_portgroup:
        return None
    if not earlier.override:
        bare = NetworkMap("", {})
        _, mine = host_layers(bare, earlier, "", None)
        _, theirs = host_layers(bare, later, "", None)
        if later.override or any(theirs.values.get(key) != value
                                 for key, value in mine.values.items()):
            return None
    said = [f"it needs {' and '.join(sorted(possible_needs(earlier)))} only"
            if possible_needs(earlier) else "it needs no identity",
            "no pool that can fill",
            "the same portgroups" if earlier.portgroups else "neither has portgroups",
            "it overrides the guest" if earlier.override else
            "no host parameter the other lacks"]
    return ", ".join(said)

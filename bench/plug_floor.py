"""The bare floor of plugging a batch of VIFs: pyroute2 and ovsdbapp used directly, no vifplug.

What a batch plug must do at the least, written by hand (ENVIRONMENT.md, "Plugging costs"):

* **hybrid** plug, per VIF, over one ``IPRoute`` in the namespace: create ``qbr…`` with forward
  delay and ageing 0 and the MTU (one request), create the veth ``qvb…``/``qvo…`` with the MTU on
  both ends (one request), bring ``qvo`` up (one request: not in the creating request, the
  kernel refuses with ENOTCONN), read the qbr's index (one request), enslave ``qvb`` to the qbr
  and bring it up (one request), bring the qbr up (one request); IPv6 off on every qbr (one
  thread entering the namespace once for the whole batch, writing
  ``/proc/sys/net/ipv6/conf/qbr…/disable_ipv6``); then **one** OVSDB
  transaction for the batch adding every ``qvo`` to br-int with its four external_ids
  (iface-id, iface-status, attached-mac, vm-uuid), ``mtu_request`` and the access ``tag``.
* **manual** plug: the TAPs (no packet info, vnet_hdr) made with ``TUNSETIFF`` +
  ``TUNSETPERSIST`` from one thread that enters the namespace once for the batch, then MTU and
  up (one request per TAP); one OVSDB transaction for the batch, as above (no tag when the VIF
  has none).
* **unplug**: one OVSDB transaction removing every port from br-int (``db_remove`` of the port
  rows from ``Bridge.ports``: ovsdb-server then drops the unreferenced Port and Interface rows),
  then the devices (hybrid: qbr and qvb, whose peer goes with it; manual: the TAP) moved into one
  link group and deleted with one netlink request.

The end state is the same as vifplug's for the same VIFs (bench/plug.py checks it once per run).
Nothing is read that the code already knows: the qbr's index (the kernel picks it) and the OVSDB
port rows (from the IDL's in-memory replica) only.

Run alone (root): ``/work/venv/bin/python bench/plug_floor.py [-n 100] [--kind hybrid|manual]``
prints ms per VIF for one batch plug and unplug on a fresh private OVS.
"""

from __future__ import annotations

import argparse
import fcntl
import socket
import struct
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ovs import BRIDGE, INSTANCE_UUID, names, private_ovs, vif_specs

#: The link group unplug moves the devices to, then deletes at once.
GROUP = 0x666C6F72  # "flor"


TUNSETIFF, TUNSETPERSIST = 0x400454CA, 0x400454CB
IFF_TAP, IFF_NO_PI, IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


def _make_tap(name: str) -> None:
    """A persistent TAP (no packet info, vnet_hdr) in the calling thread's namespace: two
    ioctls, as ``ip tuntap add`` does (pyroute2 forks a process per TAP in a namespace)."""
    with open("/dev/net/tun", "rb", buffering=0) as tun:
        fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH22x", name.encode(),
                                                IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
        fcntl.ioctl(tun, TUNSETPERSIST, 1)


class Floor:
    """One netlink socket and one OVSDB connection, opened (untimed) before the batches."""

    def __init__(self, netns: str, db: str) -> None:
        warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
        from ovsdbapp.backend.ovs_idl import connection, idlutils
        from ovsdbapp.schema.open_vswitch import impl_idl
        from pyroute2 import IPRoute

        self.netns = netns
        self.ipr = IPRoute(netns=netns, flags=0)
        helper = idlutils.get_schema_helper(db, "Open_vSwitch")
        idl = connection.OvsdbIdl.from_server(db, "Open_vSwitch", helper=helper,
                                              helper_tables=("Open_vSwitch", "Bridge", "Port",
                                                             "Interface"))
        self.connection = connection.Connection(idl=idl, timeout=60)

        class Api(impl_idl.OvsdbIdl):  # type: ignore[misc]
            """ovsdbapp keeps the connection in a class attribute, set once per process (a
            second OvsdbIdl would talk to the first one's database): keep ours here."""

            @property
            def ovsdb_connection(self) -> Any:
                return self._connection

            @ovsdb_connection.setter
            def ovsdb_connection(self, value: Any) -> None:
                self._connection = value

        self.api = Api(self.connection)
        self.idlutils = idlutils

    def close(self) -> None:
        self.ipr.close()
        self.connection.stop()

    # --- plug ---

    def plug_hybrid(self, specs: list[dict[str, Any]]) -> None:
        link = self.ipr.link
        for spec in specs:
            n, mtu = names(spec), spec["mtu"]
            link("add", ifname=n["qbr"], kind="bridge", br_forward_delay=0, br_ageing_time=0,
                 mtu=mtu)
            link("add", ifname=n["qvb"], kind="veth", mtu=mtu,
                 peer={"ifname": n["qvo"], "mtu": mtu})
            link("set", ifname=n["qvo"], state="up")
            qbr = link("get", ifname=n["qbr"])[0]["index"]
            link("set", ifname=n["qvb"], master=qbr, state="up")
            link("set", index=qbr, state="up")
        self._sysctls([f"ipv6/conf/{names(spec)['qbr']}/disable_ipv6" for spec in specs], "1")
        self._add_ports(specs, "qvo")

    def plug_manual(self, specs: list[dict[str, Any]]) -> None:
        taps = [names(spec)["tap"] for spec in specs]
        self._in_netns(lambda: [_make_tap(tap) for tap in taps])
        for spec, tap in zip(specs, taps, strict=True):
            self.ipr.link("set", ifname=tap, mtu=spec["mtu"], state="up")
        self._add_ports(specs, "tap")

    def _add_ports(self, specs: list[dict[str, Any]], role: str) -> None:
        api = self.api
        with api.transaction(check_error=True) as txn:
            for spec in specs:
                port = names(spec)[role]
                txn.add(api.add_port(BRIDGE, port, may_exist=False, external_ids={
                    "iface-id": spec["interface_id"], "iface-status": "active",
                    "attached-mac": spec["mac"], "vm-uuid": INSTANCE_UUID},
                    mtu_request=spec["mtu"]))
                if spec["vlan"] is not None:
                    txn.add(api.db_set("Port", port, ("tag", spec["vlan"])))

    def _sysctls(self, keys: list[str], value: str) -> None:
        """Write ``/proc/sys/net/<key>`` in the namespace."""

        def write() -> None:
            for key in keys:
                with open(f"/proc/sys/net/{key}", "w") as handle:
                    handle.write(value)

        self._in_netns(write)

    def _in_netns(self, work: Callable[[], object]) -> None:
        """Run ``work`` in a thread that entered the namespace (once, for a whole batch)."""
        from pyroute2 import netns

        failure: list[BaseException] = []

        def run() -> None:
            try:
                netns.setns(self.netns, flags=0)
                work()
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    # --- unplug ---

    def unplug(self, specs: list[dict[str, Any]], kind: str) -> None:
        role = "qvo" if kind == "hybrid" else "tap"
        api, idl = self.api, self.api.idl
        ports = [self.idlutils.row_by_value(idl, "Port", "name", names(spec)[role])
                 for spec in specs]
        with api.transaction(check_error=True) as txn:
            txn.add(api.db_remove("Bridge", BRIDGE, "ports", *ports))
        devices = [names(spec)[role] for spec in specs] if kind == "manual" else \
            [names(spec)[key] for spec in specs for key in ("qbr", "qvb")]
        for device in devices:
            self.ipr.link("set", ifname=device, group=GROUP)
        self.ipr.link("del", group=GROUP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="VIFs in the batch (100)")
    parser.add_argument("--kind", choices=("hybrid", "manual"), default="hybrid")
    args = parser.parse_args(argv)
    specs = vif_specs(args.n, salt=0xF10)
    with private_ovs() as (netns, ovs):
        floor = Floor(netns.name, ovs.db)
        try:
            floor.api.br_exists(BRIDGE).execute(check_error=True)  # connected
            start = time.perf_counter()
            (floor.plug_hybrid if args.kind == "hybrid" else floor.plug_manual)(specs)
            plugged = time.perf_counter()
            assert len(ovs.ports(BRIDGE)) == args.n
            middle = time.perf_counter()
            floor.unplug(specs, args.kind)
            done = time.perf_counter()
        finally:
            floor.close()
    per_vif = 1000 / args.n
    print(f"floor {args.kind} N={args.n} ({socket.gethostname()}): plug "
          f"{(plugged - start) * per_vif:.2f} ms/VIF, unplug {(done - middle) * per_vif:.2f} "
          "ms/VIF")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One Host, many threads, without root: the group commit's sharing and failure rules over a
recording ``send``, the netlink thread's confinement, and concurrent plugs through the in-memory
fakes (tests/functional/test_concurrent.py proves it on a real kernel and OVS)."""

from __future__ import annotations

import errno
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES
from pyroute2 import NetlinkError

from vifplug import GenericVIFDriver, load_vifs
from vifplug.host import Host
from vifplug.host.errors import CommitTimeout, HostError, StepFailed
from vifplug.host.fake import FakeNetlink, FakeOvsdb
from vifplug.host.threads import GroupCommit, NetlinkThread
from vifplug.plan import DeleteOvsPort, Step

TIMEOUT = 30  # bounds a wait that must succeed; never reached


class Recorder:
    """A ``send`` that records each transaction, can be held in flight, and fails for the
    steps it is told to."""

    def __init__(self) -> None:
        self.sent: list[list[Step]] = []
        self.hold = threading.Event()
        self.hold.set()
        self.bad: set[Step] = set()
        self.timeout = False

    def __call__(self, steps: Sequence[Step]) -> int | None:
        self.sent.append(list(steps))
        assert self.hold.wait(TIMEOUT)
        if self.timeout:
            raise CommitTimeout("no answer")
        if self.bad & set(steps):
            raise HostError("rejected")
        return len(self.sent)


def port(number: int) -> Step:
    return DeleteOvsPort(f"p{number}")


def commit_in_threads(commits: GroupCommit, recorder: Recorder, count: int
                      ) -> dict[int, Any]:
    """Caller 0 alone until its transaction is in flight (held), then callers 1..count-1,
    until they all queue; then release. What each caller got."""
    got: dict[int, Any] = {}

    def call(number: int) -> None:
        try:
            got[number] = commits.commit([port(number)])
        except Exception as exc:
            got[number] = exc

    recorder.hold.clear()
    threads = [threading.Thread(target=call, args=(n,)) for n in range(count)]
    threads[0].start()
    assert commits.wait_for(lambda c: c.in_flight(), TIMEOUT)
    for thread in threads[1:]:
        thread.start()
    assert commits.wait_for(lambda c: c.waiting() == count - 1, TIMEOUT)
    recorder.hold.set()
    for thread in threads:
        thread.join()
    return got


def test_a_lone_caller_sends_its_own_transaction() -> None:
    recorder = Recorder()
    commits = GroupCommit(recorder)
    assert commits.commit([port(1), port(2)]) == 1
    assert recorder.sent == [[port(1), port(2)]]
    assert (commits.stats.transactions, commits.stats.requests) == (1, 1)


def test_callers_arriving_during_a_transaction_share_the_next() -> None:
    recorder = Recorder()
    commits = GroupCommit(recorder)
    got = commit_in_threads(commits, recorder, 10)
    assert recorder.sent[0] == [port(0)]
    assert sorted(recorder.sent[1], key=str) == sorted((port(n) for n in range(1, 10)), key=str)
    assert len(recorder.sent) == 2
    assert got == {0: 1, **dict.fromkeys(range(1, 10), 2)}  # each gets its transaction's cfg
    assert commits.stats.largest == 9


def test_a_shared_transaction_that_fails_goes_out_again_caller_by_caller() -> None:
    recorder = Recorder()
    recorder.bad = {port(4)}
    commits = GroupCommit(recorder)
    got = commit_in_threads(commits, recorder, 6)
    assert isinstance(got.pop(4), HostError)
    assert all(isinstance(value, int) for value in got.values())
    assert len(recorder.sent) == 1 + 1 + 5  # the first; the shared one; one per caller
    assert sorted(map(str, recorder.sent[2:])) == sorted(str([port(n)]) for n in range(1, 6))


def test_a_transaction_that_timed_out_is_not_sent_again() -> None:
    recorder = Recorder()
    commits = GroupCommit(recorder)
    recorder.timeout = True
    got = commit_in_threads(commits, recorder, 4)
    assert all(isinstance(value, CommitTimeout) for value in got.values())
    assert len(recorder.sent) == 2


def test_identical_steps_go_out_once() -> None:
    recorder = Recorder()
    commits = GroupCommit(recorder)
    got: list[Any] = []
    recorder.hold.clear()
    first = threading.Thread(target=lambda: got.append(commits.commit([port(0)])))
    first.start()
    assert commits.wait_for(lambda c: c.in_flight(), TIMEOUT)
    same = [threading.Thread(target=lambda: got.append(commits.commit([port(9)])))
            for _ in range(3)]
    for thread in same:
        thread.start()
    assert commits.wait_for(lambda c: c.waiting() == 3, TIMEOUT)
    recorder.hold.set()
    for thread in [first, *same]:
        thread.join()
    assert recorder.sent == [[port(0)], [port(9)]]


class ThreadNetlink(FakeNetlink):
    """Records the thread each call ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []
        self.closed_on: str | None = None

    def get(self, name: str) -> Any:
        self.threads.append(threading.current_thread().name)
        return super().get(name)

    def close(self) -> None:
        self.closed_on = threading.current_thread().name
        super().close()


def test_netlink_of_other_threads_runs_on_the_hosts_netlink_thread() -> None:
    opened: list[ThreadNetlink] = []

    def open_netlink() -> ThreadNetlink:
        opened.append(ThreadNetlink())
        return opened[-1]

    host = Host()
    host._open_netlink = open_netlink  # a pure seam: what the Host opens
    host.netlink.get("lo")
    others = [threading.Thread(target=lambda: host.netlink.get("lo"), name=f"caller-{n}")
              for n in range(5)]
    for thread in others:
        thread.start()
        thread.join()
    assert len(opened) == 2  # the first thread's, and the netlink thread's
    assert opened[0].threads == [threading.current_thread().name]
    assert len(opened[1].threads) == 5
    assert {name.split("_")[0] for name in opened[1].threads} == {"vifplug-netlink"}
    host.close()
    assert opened[1].closed_on is not None
    assert opened[1].closed_on.startswith("vifplug-netlink")


def test_errors_of_the_netlink_thread_reach_the_caller() -> None:
    thread = NetlinkThread(FakeNetlink)
    proxy = thread.proxy()
    with pytest.raises(NetlinkError) as raised:
        proxy.update("nope", up=True)
    assert raised.value.code == errno.ENODEV
    thread.close()


def test_threads_plugging_through_one_host_each_get_their_outcome(tmp_path: Path) -> None:
    """Twenty threads plug twenty hybrid VIFs through one Host over the fakes; one of them is
    refused (an operator's device holds its qvb name) and rolled back alone."""
    netlink, ovsdb = FakeNetlink(), FakeOvsdb()
    host = Host.using(netlink, ovsdb, lock_dir=tmp_path)
    data = json.loads((EXAMPLES / "ovs-hybrid.json").read_text())
    vifs = []
    for n in range(20):
        vif_id = f"{n:08x}-5b7a-4c1e-9d2e-6a1b2c3d4e5f"
        vifs.append(load_vifs({**data, "id": vif_id, "mac": f"fa:16:3e:12:34:{n:02x}",
                               "ovs": {**data["ovs"], "interface_id": vif_id}})[0])
    netlink.add_device(vifs[7].qvb_name, "dummy")
    driver = GenericVIFDriver(firewall=True)
    errors: dict[str, Exception] = {}

    def plug(vif: Any) -> None:
        try:
            driver.plug(vif, host, wait=False)
        except Exception as exc:
            errors[vif.id] = exc

    threads = [threading.Thread(target=plug, args=(vif,)) for vif in vifs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert list(errors) == [vifs[7].id]
    assert isinstance(errors[vifs[7].id], StepFailed)
    ports = ovsdb.state()["Bridge"]["br-int"]["ports"]
    assert sorted(ports) == sorted(["br-int"] + [vif.qvo_name for vif in vifs
                                                 if vif is not vifs[7]])
    assert vifs[7].qbr_name not in netlink.state()
    assert netlink.state()[vifs[7].qvb_name]["kind"] == "dummy"

"""What a failed batch says: one short line naming the step, the devices (abbreviated past a
few) and the cause, whatever OVSDB or ovs-vsctl said (issue 13: ovsdbapp's command reprs made
an 18,487-character line, ovs-vsctl's log several lines)."""

from __future__ import annotations

import pytest

from tests.functional.conftest import Env
from tests.functional.test_rollback import INSTANCE, other_bridge
from vifplug.driver import GenericVIFDriver
from vifplug.host import StepFailed

DRIVER = GenericVIFDriver()


@pytest.mark.parametrize("backend", ["native", "vsctl"])
def test_a_batch_of_30_refused_by_the_database_fails_in_one_short_line(
        backend: str, env: Env) -> None:
    vifs = [env.vif("ovs-hybrid.json") for _ in range(30)]
    taken = vifs[17].qvo_name
    other = other_bridge(env)
    # an operator's bond port on another bridge whose member interface has the name VIF 17's
    # qvo port needs: a port-name check cannot see it; the database refuses the transaction
    # (patch interfaces: no kernel device, so the link phase succeeds and OVSDB refuses)
    env.ovs.vsctl("add-bond", other, "vpopbond", taken, "vpopother", "--", "set", "Interface",
                  taken, "type=patch", "options:peer=nowhere", "--", "set", "Interface",
                  "vpopother", "type=patch", "options:peer=nowhere")
    before = env.snapshot()

    with pytest.raises(StepFailed) as raised:
        DRIVER.plug_many(vifs, env.host(backend), instance_uuid=INSTANCE)

    message = str(raised.value)
    shown = ", ".join(vif.qvo_name for vif in vifs[:3])
    cause = (f'constraint violation: Transaction causes multiple rows in "Interface" table to '
             f'have identical values ({taken}) for index on column "name"'
             if backend == "native" else
             f"ovs-vsctl: cannot create a port named {taken} because an interface named "
             f"{taken} already exists on bridge {other}")
    assert message == (f"30 steps in one request ({shown} and 27 more): failed: OVSDB "
                       f"transaction failed: {cause} (the host is as before)")
    assert raised.value.rolled_back
    assert env.snapshot() == before

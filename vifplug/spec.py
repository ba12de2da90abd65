"""The numbers and patterns of vifplug's contracts (vif.json, networks.toml, the domain metadata),
each defined once. Pure and light (no pydantic, no lxml): the migration hook imports it.

The model validates with these, the JSON Schema is derived from them, and the network map checks
its VLANs and port profiles against the same ranges.
"""

from __future__ import annotations

__all__ = [
    "MAC_PATTERN",
    "METADATA_NS",
    "METADATA_PREFIX",
    "MTU_MAX",
    "MTU_MIN",
    "PATH_MAX",
    "QUEUES_MAX",
    "QUEUE_SIZES",
    "SPEED_MAX",
    "SPEED_MIN",
    "UINT8_MAX",
    "UINT24_MAX",
    "UINT32_MAX",
    "UNIX_PATH_MAX",
    "UUID_PATTERN",
    "VLAN_MAX",
    "VLAN_MIN",
]

#: The namespace of vifplug's domain ``<metadata>`` element (HOOK_CONTRACT.md).
METADATA_NS = "http://vifplug.org/xmlns/vifplug/1"
#: The prefix vifplug writes for it.
METADATA_PREFIX = "vifplug"

#: 802.1Q VLAN ids a port may carry (0 means untagged, 4095 is reserved).
VLAN_MIN, VLAN_MAX = 1, 4094
#: The MTUs libvirt and the kernel accept on a guest NIC (68: IPv4's minimum).
MTU_MIN, MTU_MAX = 68, 65535
#: virtio-net's most queue pairs.
QUEUES_MAX = 256
#: virtio-net ring sizes QEMU accepts (``rx_queue_size``, ``tx_queue_size``): powers of two.
QUEUE_SIZES = (256, 512, 1024)
#: ``<bandwidth>`` rates (kB/s) and bursts (kB): libvirt's unsigned 32-bit fields.
SPEED_MIN, SPEED_MAX = 1, 2**32 - 1
#: 802.1Qbg managerid / typeidversion (8 bits) and typeid (24 bits).
UINT8_MAX = 255
UINT24_MAX = 2**24 - 1
#: libvirt's unsigned int fields (``<coalesce>``'s frames).
UINT32_MAX = 2**32 - 1
#: The longest file path (Linux PATH_MAX, including the NUL).
PATH_MAX = 4095
#: sun_path is 108 bytes including the terminating NUL.
UNIX_PATH_MAX = 107

#: A UUID in its usual text form (either case).
UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: A MAC address ``xx:xx:xx:xx:xx:xx`` (either case).
MAC_PATTERN = r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}"

#: Where vifplug records which guest holds which NIC of a pooled ``direct`` network
#: (vifplug.pools; ``VIFPLUG_POOLS`` overrides it). Here because the hook's ``release``
#: operation checks it exists before importing anything.
POOLS_STATE = "/var/lib/vifplug/pools.json"

#!/usr/bin/env python3
"""Generate docs/src/vif-format.md, the vif.json reference.

    python docs/gen_reference.py           # rewrite docs/src/vif-format.md
    python docs/gen_reference.py --check   # exit 1 when the committed page is out of date

Sources, so the page cannot drift from the code:

* the key tables come from the JSON Schema (``vifplug.model.Vif.json_schema()``, the same as
  ``vifplug schema``): types, ranges, enums, patterns, defaults, required keys, and the
  "required when vif_type is ..." rules of its ``allOf``;
* the meaning of each key is its ``#:`` comment in vifplug/model.py, each object's intro the first
  paragraph of its class docstring;
* the "Checked" rules of string keys (rules the schema does not express) are the messages vifplug
  itself gives for a few bad values, collected by validating them;
* the table of keys accepted per vif_type is found by validating each key with each vif_type;
* the error examples are real ``vifplug validate`` runs on bad files written to a temporary
  directory.

The prose around them is docs/vif-format.template.md.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from markdown.extensions.toc import slugify

import vifplug.model
from vifplug.errors import InvalidVifError, json_path
from vifplug.model import VIF_TYPES, Vif

DOCS = Path(__file__).resolve().parent
TEMPLATE = DOCS / "vif-format.template.md"
OUTPUT = DOCS / "src" / "vif-format.md"

UUID = "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"
#: Matrix cell for a key a vif_type refuses (an en dash, as in the hand-written tables).
REFUSED = "\u2013"

#: A minimal valid VIF of each vif_type: the base the probes below change one key of.
BASES: dict[str, dict[str, Any]] = {
    "bridge": {"network": {"name": "red", "bridge": "br0"}},
    "ovs": {"network": {"name": "blue", "bridge": "br-int"}, "ovs": {"interface_id": UUID}},
    "802.1qbg": {
        "network": {"name": "green", "interface": "eth2"},
        "qbg": {"manager_id": 11, "type_id": 1193047, "type_id_version": 2, "instance_id": UUID},
    },
    "802.1qbh": {"network": {"name": "green", "interface": "eth2"},
                 "qbh": {"profile_id": "finance"}},
    "direct": {"network": {"name": "green", "interface": "eth2"}},
    "ethernet": {"network": {"name": "routed"}},
    "vhostuser": {"network": {"name": "dpdk"},
                  "vhostuser": {"socket": "/run/openvswitch/vhu0f6d3c1e-5b"}},
    "hostdev": {"network": {"name": "sriov"}, "hostdev": {"pci": "0000:3b:00.2"}},
    "vdpa": {"network": {"name": "offload"}, "vdpa": {"device": "/dev/vhost-vdpa-0"}},
}

#: Bad values per key whose rules the schema does not state: (path, vif_type of the base, values).
PROBES: list[tuple[tuple[str, ...], str, list[Any]]] = [
    (("id",), "ovs", ["0f6d3c1e"]),
    (("mac",), "ovs", ["fa:16:3e:12:34", "01:00:5e:00:00:01", "00:00:00:00:00:00"]),
    (("devname",), "ovs", ["", "tap 1", "tap0123456789abc", "..", "vnet0"]),
    (("model",), "ovs", ["virtio net"]),
    (("network", "name"), "ovs", ["", "blue net"]),
    (("network", "bridge"), "ovs", ["", "br int", "br-int-0123456789", ".."]),
    (("network", "interface"), "direct", ["", "eth 2", "eth2-0123456789ab", ".."]),
    (("network", "trunk"), "ovs", [[], [100, 100]]),
    (("filter", "name"), "ovs", ["1-filter"]),
    (("filter", "parameters"), "ovs",
     [{"IP address": "198.51.100.10"}, {"IP": "198.51.100.10/24"}]),
    (("qbh", "profile_id"), "802.1qbh", ["", "p" * 40]),
    (("vhostuser", "socket"), "vhostuser",
     ["vhu0", "/run/" + "s" * 103, "/run/\tvhu0", "/run/../vhu0"]),
    (("hostdev", "pci"), "hostdev", ["3b:00.2", "0000:3b:20.2"]),
    (("virtio", "tx_queue_size"), "bridge", [512]),
    (("rom", "file"), "bridge", ["/usr/share/vt/../pxe.rom"]),
    (("backend", "tap"), "bridge", ["/dev/net/tun/", "/dev/./net/tun"]),
]

#: A valid value for each optional key, to find which vif_types accept it (path, patch to merge).
SAMPLES: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("devname",), {"devname": "vm1-eth0"}),
    (("model",), {"model": "virtio"}),
    (("mtu",), {"mtu": 1500}),
    (("filtered",), {"filtered": True}),
    (("plug",), {"plug": "hybrid"}),
    (("queues",), {"queues": 2}),
    (("virtio",), {"virtio": {"rx_queue_size": 512}}),
    (("link_state",), {"link_state": "up"}),
    (("bandwidth",), {"bandwidth": {"inbound": {"average": 1000}}}),
    (("coalesce",), {"coalesce": {"rx_max_frames": 7}}),
    (("backend",), {"backend": {"tap": "/dev/net/tun"}}),
    (("rom",), {"rom": {"enabled": False}}),
    (("trust_guest_rx_filters",), {"trust_guest_rx_filters": True}),
    (("filter",), {"filter": {"name": "clean-traffic"}}),
    (("isolated",), {"isolated": True}),
    (("alias",), {"alias": "ua-net0"}),
    (("ovs",), {"ovs": {"interface_id": UUID}}),
    (("qbg",), {"qbg": BASES["802.1qbg"]["qbg"]}),
    (("qbh",), {"qbh": {"profile_id": "finance"}}),
    (("direct",), {"direct": {"mode": "passthrough"}}),
    (("vhostuser",), {"vhostuser": BASES["vhostuser"]["vhostuser"]}),
    (("hostdev",), {"hostdev": {"pci": "0000:3b:00.2"}}),
    (("vdpa",), {"vdpa": {"device": "/dev/vhost-vdpa-0"}}),
    (("network", "bridge"), {"network": {"bridge": "br0"}}),
    (("network", "interface"), {"network": {"interface": "eth2"}}),
    # a VLAN on a macvtap needs passthrough mode: give it, so only "not used" can refuse the key
    (("network", "vlan"), {"network": {"vlan": 100}, "direct": {"mode": "passthrough"}}),
    (("network", "trunk"), {"network": {"trunk": [100, 200]}}),
    (("network", "create_bridge"), {"network": {"create_bridge": True}}),
    (("network", "create_vlan"),
     {"network": {"create_vlan": True, "interface": "eth1", "vlan": 100}}),
]

#: Bad files for the "Error messages" section: (file name, text, extra validate options).
ERROR_EXAMPLES: list[tuple[str, str, list[str]]] = [
    ("typo.json", """\
{
  "id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f",
  "vif_type": "ovs",
  "mac": "fa:16:3e:12:34:56",
  "mtuu": 1450,
  "network": {"name": "blue", "bridge": "br-int", "vlan": 5000},
  "ovs": {"interface_id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"}
}
""", []),
    ("missing-port.json", """\
{
  "id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f",
  "vif_type": "ovs",
  "mac": "fa:16:3e:12:34:56",
  "network": {"name": "blue", "bridge": "br-int"}
}
""", []),
    ("two-nics.json", """\
[
  {
    "id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f",
    "vif_type": "bridge",
    "mac": "fa:16:3e:12:34:56",
    "network": {"name": "red", "bridge": "red"}
  },
  {
    "id": "1a2b3c4d-5e6f-4a1b-9c2d-3e4f5a6b7c8d",
    "vif_type": "direct",
    "mac": "fa:16:3e:1a:2b:3c",
    "network": {"name": "green", "interface": "eth2", "vlan": 42},
    "direct": {"mode": "bridge"}
  }
]
""", []),
    ("old-libvirt.json", """\
{
  "id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f",
  "vif_type": "ovs",
  "mac": "fa:16:3e:12:34:56",
  "plug": "virtualport",
  "network": {"name": "blue", "bridge": "br-int"},
  "ovs": {"interface_id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f"}
}
""", ["--libvirt-version", "0.9.10"]),
    ("packed-ring.json", """\
{
  "id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f",
  "vif_type": "bridge",
  "mac": "fa:16:3e:12:34:56",
  "network": {"name": "red", "bridge": "br0"},
  "virtio": {"packed": true}
}
""", ["--libvirt-version", "6.2.0"]),
]


#: The tuning keys' example for the docs, rendered by the real CLI.
TUNED_EXAMPLE = """\
{
  "id": "0f6d3c1e-5b7a-4c1e-9d2e-6a1b2c3d4e5f",
  "vif_type": "bridge",
  "mac": "fa:16:3e:12:34:56",
  "network": {"name": "red", "bridge": "br0"},
  "queues": 4,
  "virtio": {"rx_queue_size": 1024, "packed": true},
  "coalesce": {"rx_max_frames": 32},
  "backend": {"tap": "/dev/net/tun", "vhost": "/dev/vhost-net"},
  "rom": {"enabled": false}
}
"""


# --- helpers ------------------------------------------------------------------------------------


def rst_to_md(text: str) -> str:
    """``x`` → `x`; :class:`~a.b.C` → `C`; the spec file name → a link to the rules below."""
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    return text.replace("(see VIF_FORMAT.md)", "(see [Cross-field rules](#cross-field-rules))")


def field_comments(cls: type) -> dict[str, str]:
    """The ``#:`` comment above each field of a model class."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        match = re.match(r"(\w+)\s*:", stripped)
        if match and pending:
            comments[match.group(1)] = " ".join(pending)
        pending = []
    return comments


def merged_comments(name: str) -> dict[str, str]:
    """The ``#:`` comments of a schema definition's keys. ``Vif`` and ``Network`` are one
    object in the schema but a class per vif_type in the model: a key's comment is gathered
    from every kind (where kinds say different things, each is named: ``bridge: …; ovs: …``)."""
    if name not in ("Vif", "Network"):
        return field_comments(model_class(name))
    said: dict[str, dict[str, list[str]]] = {}  # key -> comment -> vif_types
    for vif_type, kind in vifplug.model.KINDS.items():
        cls = kind if name == "Vif" else kind.model_fields["network"].annotation
        own: dict[str, str] = {}
        for ancestor in reversed(cls.__mro__):
            if ancestor.__module__ == "vifplug.model":
                own.update(field_comments(ancestor))
        for key, text in own.items():
            if key in cls.model_fields:
                said.setdefault(key, {}).setdefault(text, []).append(vif_type)
    return {key: next(iter(texts)) if len(texts) == 1 else
            "; ".join(f"{', '.join(f'`{k}`' for k in kinds)}: {text.rstrip('.')}"
                      for text, kinds in texts.items())
            for key, texts in said.items()}


def model_class(name: str) -> type:
    """The model class of a schema definition (``$defs`` names are the class names)."""
    cls = getattr(vifplug.model, name)
    assert inspect.isclass(cls), name  # noqa: S101
    return cls


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def vif_data(kind: str, patch: dict[str, Any] | None = None) -> dict[str, Any]:
    data = {"id": UUID, "vif_type": kind, "mac": "fa:16:3e:12:34:56", **BASES[kind]}
    return deep_merge(data, patch or {})


def problems_of(data: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    try:
        Vif.parse(data)
    except InvalidVifError as exc:
        return exc.problems
    return ()


def nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    patch: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        patch = {key: patch}
    return patch


def code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f"`{text}`"


# --- what the schema says -----------------------------------------------------------------------


class Reference:
    def __init__(self) -> None:
        self.schema = Vif.json_schema()
        self.defs: dict[str, dict[str, Any]] = self.schema["$defs"]
        self.conditional = self._conditional_required()
        self.sections = self._sections()
        self.checked = self._probe_rules()

    def _conditional_required(self) -> dict[tuple[str, ...], list[str]]:
        """path → the vif_types that require it (the ``allOf`` if/then of the Vif schema)."""
        found: dict[tuple[str, ...], list[str]] = {}

        def walk(node: dict[str, Any], prefix: tuple[str, ...], kind: str) -> None:
            for key in node.get("required", []):
                found.setdefault((*prefix, key), []).append(kind)
            for key, sub in node.get("properties", {}).items():
                walk(sub, (*prefix, key), kind)

        for rule in self.defs["Vif"].get("allOf", []):
            kind = rule["if"]["properties"]["vif_type"]["const"]
            walk(rule["then"], (), kind)
        return found

    def _sections(self) -> list[tuple[str, list[tuple[str, ...]]]]:
        """(definition name, key paths using it), from the top level down, in schema order."""
        order: list[str] = ["Vif"]
        paths: dict[str, list[tuple[str, ...]]] = {"Vif": [()]}
        queue: list[tuple[str, tuple[str, ...]]] = [("Vif", ())]
        while queue:
            name, prefix = queue.pop(0)
            for key, prop in self.defs[name]["properties"].items():
                ref = self._ref(prop)
                if ref is None:
                    continue
                if ref not in paths:
                    order.append(ref)
                    paths[ref] = []
                    queue.append((ref, (*prefix, key)))
                paths[ref].append((*prefix, key))
        return [(name, paths[name]) for name in order]

    @staticmethod
    def _ref(prop: dict[str, Any]) -> str | None:
        for option in prop.get("anyOf", [prop]):
            if "$ref" in option:
                return str(option["$ref"]).rsplit("/", 1)[-1]
        return None

    def heading(self, name: str) -> str:
        if name == "Vif":
            return "Top level"
        return " and ".join(f"`{'.'.join(path)}`" for path in dict(self.sections)[name])

    def anchor(self, name: str) -> str:
        return str(slugify(self.heading(name).replace("`", ""), "-"))

    def _probe_rules(self) -> dict[tuple[str, ...], list[str]]:
        """path → the messages vifplug gives for bad values (" (got ...)" left out)."""
        checked: dict[tuple[str, ...], list[str]] = {}
        for path, kind, values in PROBES:
            where = json_path(path)
            for value in values:
                data = vif_data(kind, nested(path, value))
                messages = [m for p, m in problems_of(data)
                            if p == where or p.startswith((where + ".", where + "["))]
                if not messages:
                    raise SystemExit(f"gen_reference: probe {where} = {value!r} gave no error "
                                     f"there: {problems_of(data)}")
                for message in messages:
                    rule = re.sub(r" \(got .*\)$", "", message)
                    if rule not in checked.setdefault(path, []):
                        checked[path].append(rule)
        return checked

    # --- rendering ---

    def type_text(self, prop: dict[str, Any]) -> str:
        options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
        if len(options) != 1:
            raise SystemExit(f"gen_reference: cannot describe {prop}")
        schema = options[0]
        if "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            return f"object, see [{self.heading(name)}](#{self.anchor(name)})"
        if "enum" in schema:
            return "one of " + ", ".join(code(v) for v in schema["enum"])
        kind = schema.get("type")
        if kind == "string":
            if schema.get("format") == "uuid":
                return "UUID string"
            parts = ["string"]
            if "pattern" in schema:
                parts.append(f"matching `{schema['pattern']}`")
            if "not" in schema and "enum" in schema["not"]:
                parts.append("not " + " or ".join(code(v) for v in schema["not"]["enum"]))
            return ", ".join(parts)
        if kind == "integer":
            low, high = schema.get("minimum"), schema.get("maximum")
            if low is not None and high is not None:
                return f"integer {low}..{high}"
            return "integer"
        if kind == "boolean":
            return "boolean"
        if kind == "array":
            text = "array of " + self.type_text(schema["items"])
            low, high = schema.get("minItems"), schema.get("maxItems")
            if low is not None and high is not None:
                text += f", {low} to {high} items"
            elif low is not None:
                text += f", at least {low} item{'s' if low != 1 else ''}"
            elif high is not None:
                text += f", at most {high} items"
            return text
        if kind == "object" and "additionalProperties" in schema:
            names = schema.get("propertyNames", {}).get("pattern")
            values = self.type_text(schema["additionalProperties"])
            return (f"object: keys matching `{names}`, values {values}" if names
                    else f"object of {values}")
        raise SystemExit(f"gen_reference: cannot describe {schema}")

    @staticmethod
    def default_text(prop: dict[str, Any]) -> str:
        if "default" not in prop or prop["default"] is None:
            return ""
        default = prop["default"]
        if default in ([], {}):
            return "empty"
        return code(default)

    def required_text(self, name: str, key: str, required: list[str],
                      prefixes: list[tuple[str, ...]]) -> str:
        if key in required:
            return "yes" if name == "Vif" else "yes (in the object)"
        kinds: list[str] = []
        for prefix in prefixes:
            for kind in self.conditional.get((*prefix, key), []):
                if kind not in kinds:
                    kinds.append(kind)
        if kinds:
            return "when `vif_type` is " + ", ".join(f"`{k}`" for k in kinds)
        return "no"

    def table(self, name: str, prefixes: list[tuple[str, ...]]) -> str:
        definition = self.defs[name]
        comments = merged_comments(name)
        required = definition.get("required", [])
        rows = ["| key | type | required | default | meaning |", "|---|---|---|---|---|"]
        for key, prop in definition["properties"].items():
            meaning = rst_to_md(comments.get(key, ""))
            checked = [rule for prefix in prefixes for rule in self.checked.get((*prefix, key), [])]
            if checked:
                meaning += " Checked: " + "; ".join(dict.fromkeys(checked)) + "."
            rows.append(f"| `{key}` | {self.type_text(prop)} | "
                        f"{self.required_text(name, key, required, prefixes)} | "
                        f"{self.default_text(prop)} | {meaning.strip()} |")
        return "\n".join(rows)

    def tables(self) -> str:
        out: list[str] = []
        for name, prefixes in self.sections:
            intro = rst_to_md(self.defs[name].get("description", "").split("\n\n")[0])
            intro = " ".join(intro.split())
            out.append(f"### {self.heading(name)}\n\n{intro}\n\n{self.table(name, prefixes)}\n")
        return "\n".join(out)

    def matrix(self) -> str:
        header = "| key | " + " | ".join(f"`{k}`" for k in VIF_TYPES) + " |"
        rows = [header, "|---|" + "---|" * len(VIF_TYPES)]
        for path, patch in SAMPLES:
            where = json_path(path)
            cells = []
            for kind in VIF_TYPES:
                if kind in self.conditional.get(path, []):
                    cells.append("required")
                    continue
                problems = problems_of(vif_data(kind, patch))
                here = [m for p, m in problems if p == where]
                unused = [m for m in here if m.startswith("not used by vif_type")]
                others = [(p, m) for p, m in problems if not m.startswith("not used by vif_type")]
                if unused:
                    cells.append(REFUSED)
                elif not here and not others:
                    cells.append("✓")
                else:
                    raise SystemExit(f"gen_reference: sample {where} with {kind}: {problems}")
            rows.append(f"| `{'.'.join(path)}` | " + " | ".join(cells) + " |")
        return "\n".join(rows)


# --- real error output --------------------------------------------------------------------------


def error_examples() -> str:
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vifplug-docs-") as tmp:
        for name, text, options in ERROR_EXAMPLES:
            (Path(tmp) / name).write_text(text)
            argv = ["validate", *options, name]
            result = subprocess.run(
                [sys.executable, "-m", "vifplug", *argv], cwd=tmp, capture_output=True,
                text=True, check=False,
            )
            if result.returncode != 2 or result.stdout:
                raise SystemExit(f"gen_reference: vifplug {' '.join(argv)} gave exit "
                                 f"{result.returncode}, stdout {result.stdout!r}")
            out.append(f"`{name}`:\n\n```json\n{text}```\n\n```console\n"
                       f"$ vifplug {' '.join(argv)}\n{result.stderr}$ echo $?\n2\n```\n")
    return "\n".join(out)


def tuned_example() -> str:
    with tempfile.TemporaryDirectory(prefix="vifplug-docs-") as tmp:
        (Path(tmp) / "tuned.json").write_text(TUNED_EXAMPLE)
        argv = ["render", "tuned.json"]
        result = subprocess.run([sys.executable, "-m", "vifplug", *argv], cwd=tmp,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0 or result.stderr:
            raise SystemExit(f"gen_reference: vifplug {' '.join(argv)} gave exit "
                             f"{result.returncode}, stderr {result.stderr!r}")
    return (f"`tuned.json`:\n\n```json\n{TUNED_EXAMPLE}```\n\n```console\n"
            f"$ vifplug {' '.join(argv)}\n{result.stdout}```\n")


def generate() -> str:
    reference = Reference()
    text = TEMPLATE.read_text()
    for marker, content in (("@@TABLES@@", reference.tables()),
                            ("@@MATRIX@@", reference.matrix()),
                            ("@@TUNED@@", tuned_example()),
                            ("@@ERRORS@@", error_examples())):
        if marker not in text:
            raise SystemExit(f"gen_reference: {TEMPLATE.name} lacks {marker}")
        text = text.replace(marker, content.rstrip("\n"))
    return text


def main(argv: list[str]) -> int:
    page = generate()
    if argv[1:] == ["--check"]:
        if OUTPUT.read_text() != page:
            print(f"{OUTPUT} is out of date: run python docs/gen_reference.py", file=sys.stderr)
            return 1
        return 0
    if argv[1:]:
        print(__doc__, file=sys.stderr)
        return 2
    OUTPUT.write_text(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

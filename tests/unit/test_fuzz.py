"""Property-based fuzzing (issue 13, "Hardening"): mutated vif.json through the CLI, mutated
domain XML and network maps through the hook. Whatever comes in, vifplug answers with its own
documented outcome — never a traceback, never "unexpected error".

- vif.json (every example, one leaf replaced by any JSON value, a key dropped or added, or the
  bytes cut, spliced or corrupted) through ``vifplug render``: exit 0 with an ``<interface>`` (or
  ``<devices>``), or exit 2 with its errors on stderr.
- the hook (``migrate begin``) on examples/domain.xml with an interface's attributes and text
  mutated, or the bytes corrupted, against examples/networks.toml mutated the same way: exit 0
  with a well-formed ``<domain>`` whose parts other than interfaces and metadata are unchanged,
  or exit 1 with nothing on stdout and one line on stderr.

Bounded for CI (``HYPOTHESIS_PROFILE`` unset: 150 examples a test, ~10 s in all); by hand,
``HYPOTHESIS_PROFILE=fuzz`` runs 20,000 each. No deadline: time is never asserted.
"""

from __future__ import annotations

import io
import json
import os
import xml.etree.ElementTree as ET  # the hook's own parser; every input here is made by the test
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vifplug.cli import main as cli
from vifplug.hook import main as hook

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VIF_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("*.json"))
DOMAIN = (EXAMPLES / "domain.xml").read_bytes()
#: strict = false: the rewrite path is what is fuzzed (the device checks, which would refuse
#: every guest on a machine without these bridges, are tested in test_preflight.py)
MAP = "strict = false\n" + (EXAMPLES / "networks.toml").read_text()

settings.register_profile("ci", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=20_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "\n", "a\nb", "\u202e", "é" * 300, "9" * 5000, "x" * 70000,
                     "-1", "1e999", "NaN", "fa:16:3e:00:00:01\n"]),
)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), ODD_TEXT,
              st.integers(min_value=10**50, max_value=10**60)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(ODD_TEXT, inner, max_size=4)),
    max_leaves=12,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def mutated_vif_json(draw: st.DrawFn) -> bytes:
    data = json.loads((EXAMPLES / draw(st.sampled_from(VIF_EXAMPLES))).read_text())
    how = draw(st.sampled_from(["replace", "drop", "add", "bytes"]))
    paths = _paths(data)
    path = draw(st.sampled_from(paths))
    if how == "replace":
        data = _replace(data, path, draw(JSON_VALUES))
    elif how == "drop" and path:
        parent = _paths(data)[0] if len(path) == 1 else path[:-1]
        holder: Any = data
        for key in (parent if len(path) > 1 else ()):
            holder = holder[key]
        if isinstance(holder, dict):
            holder.pop(path[-1], None)
        elif isinstance(holder, list) and holder:
            holder.pop(path[-1] if isinstance(path[-1], int) else 0)
    elif how == "add" and isinstance(data, dict):
        data[draw(ODD_TEXT)] = draw(JSON_VALUES)
    raw = json.dumps(data, ensure_ascii=draw(st.booleans())).encode()
    if how == "bytes":
        raw = _corrupt(draw, raw)
    return raw


def _corrupt(draw: st.DrawFn, raw: bytes) -> bytes:
    at = draw(st.integers(0, len(raw)))
    kind = draw(st.sampled_from(["cut", "splice", "byte"]))
    if kind == "cut":
        return raw[:at]
    if kind == "splice":
        return raw[:at] + draw(st.binary(max_size=16)) + raw[at:]
    return raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]


@given(raw=mutated_vif_json())
def test_mutated_vif_json_renders_or_is_refused(raw: bytes, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "vif.json"
    path.write_bytes(raw)
    out, err = io.StringIO(), io.StringIO()
    code = cli(["render", str(path)], out, err)
    assert code in (0, 2), err.getvalue()
    assert "unexpected error" not in err.getvalue()
    assert "Traceback" not in err.getvalue()
    if code == 0:
        assert ET.fromstring(out.getvalue()).tag in ("interface", "devices")  # noqa: S314
        assert err.getvalue() == ""
    else:
        assert out.getvalue() == ""
        assert err.getvalue().strip()


# --- the hook -------------------------------------------------------------------------------------

ATTRIBUTES = ("address", "bridge", "dev", "mode", "type", "interfaceid", "instanceid", "id",
              "network", "mac", "managerid", "trunk")


@st.composite
def mutated_domain(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return _corrupt(draw, DOMAIN)
    root = ET.fromstring(DOMAIN)  # noqa: S314
    targets = [e for e in root.iter() if e is not root and e.tag not in ("name", "uuid")]
    for _ in range(draw(st.integers(1, 4))):
        element = draw(st.sampled_from(targets))
        what = draw(st.sampled_from(["attr", "drop-attr", "text", "remove-child"]))
        if what == "attr":
            element.set(draw(st.sampled_from(ATTRIBUTES)), draw(ODD_TEXT.filter(_xml_ok)))
        elif what == "drop-attr" and element.attrib:
            del element.attrib[draw(st.sampled_from(sorted(element.attrib)))]
        elif what == "text":
            element.text = draw(ODD_TEXT.filter(_xml_ok))
        elif what == "remove-child" and len(element):
            element.remove(element[draw(st.integers(0, len(element) - 1))])
    return ET.tostring(root)


def _xml_ok(text: str) -> bool:
    try:
        ET.fromstring(f"<a b={json.dumps(text)}>{''.join('x' for _ in text)}</a>")  # noqa: S314
    except ET.ParseError:
        return False
    return all(ch in "\t\n\r" or ord(ch) >= 0x20 for ch in text) and "\ud800" not in text


@st.composite
def mutated_map(draw: st.DrawFn) -> str:
    lines = MAP.splitlines()
    for _ in range(draw(st.integers(0, 3))):
        index = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["value", "drop", "dup", "garbage"]))
        line = lines[index]
        if kind == "value" and "=" in line:
            key = line.split("=", 1)[0]
            value = draw(st.sampled_from(['[]', '{}', '1.5', 'true', '"x"', '0', '-1', '4095',
                                          '[1, "a"]', '{a = 1}', '"eth0\\n"', '""', '"a.b"',
                                          '"' + "y" * 40 + '"', '[' * 40 + ']' * 40]))
            lines[index] = f"{key}= {value}"
        elif kind == "drop":
            del lines[index]
        elif kind == "dup":
            lines.insert(index, line)
        elif kind == "garbage":
            lines[index] = draw(st.text(max_size=30).filter(lambda t: "\x00" not in t))
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


def _without_interfaces(data: bytes) -> bytes:
    root = ET.fromstring(data)  # noqa: S314
    for parent in root.iter():
        for child in list(parent):
            if child.tag in ("interface", "metadata"):
                parent.remove(child)
    return ET.tostring(root)


@given(domain=mutated_domain(), text=mutated_map())
def test_the_hook_rewrites_or_refuses_in_one_line(domain: bytes, text: str,
                                                   tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "networks.toml"
    path.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    code = hook(["guest", "migrate", "begin", "-"], io.BytesIO(domain), out, err,
                networks=str(path))
    said = err.getvalue()
    assert "unexpected error" not in said, said
    if code == 0:
        assert said == ""
        result = out.getvalue().encode()
        assert ET.fromstring(result).tag == "domain"  # noqa: S314
        assert _without_interfaces(result) == _without_interfaces(domain)
    else:
        assert code == 1
        assert out.getvalue() == ""
        assert said.endswith("\n")
        assert said.count("\n") == 1, said

"""vif.json's device-name rules hold on the real kernel: every name the model accepts can be
created (IFNAMSIZ, charset), and the lengths it refuses the kernel refuses too."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures import Netns
from vifplug.names import check_device_name

ALPHABET = "abcXYZ019_.-+:/@ é\t"


def kernel_accepts(netns: Netns, name: str) -> bool:
    created = subprocess.run(["ip", "-n", netns.name, "link", "add", "name", name, "type",
                              "bridge"], capture_output=True, check=False).returncode == 0
    if created:
        subprocess.run(["ip", "-n", netns.name, "link", "delete", "dev", name], check=True,
                       capture_output=True)
    return created


def model_accepts(name: str) -> bool:
    try:
        check_device_name(name)
    except ValueError:
        return False
    return True


@settings(max_examples=60, deadline=None)
@given(name=st.text(ALPHABET, min_size=1, max_size=17))
def test_every_accepted_name_is_a_real_device_name(netns: Netns, name: str) -> None:
    if model_accepts(name):
        assert kernel_accepts(netns, name), name


@pytest.mark.parametrize(("name", "ok"), [
    ("a" * 15, True), ("a" * 16, False), ("tap0f6d3c1e-5b", True), ("qvo0f6d3c1e-5b", True),
    ("br-int.100", True), ("a_b-c.d", True),
])
def test_length_limit_is_the_kernels(netns: Netns, name: str, ok: bool) -> None:
    assert model_accepts(name) is ok
    assert kernel_accepts(netns, name) is ok

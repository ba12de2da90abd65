"""The error foreign input raises: a VIF from os-vif, nova or Neutron that vifplug cannot take."""

from __future__ import annotations

from collections.abc import Sequence

from vifplug.errors import InvalidVifError

__all__ = ["InteropError"]


class InteropError(InvalidVifError):
    """A foreign VIF (os-vif object or primitive, nova network_info VIF, Neutron port) that does
    not become a valid :class:`~vifplug.model.Vif`. Exit code 2, like every :class:`VifError`.

    ``problems`` holds ``(path, message)`` pairs whose paths are in the *foreign* input, the way
    its author wrote it: ``$.address`` (nova), ``$['binding:vif_type']`` (Neutron),
    ``$.port_profile.interface_id`` (an os-vif object's fields; in its JSON primitive they sit
    under ``versioned_object.data``). When a vif.json rule is what failed, the message ends with
    the vif.json path it broke, e.g. ``(vif.json $.network.bridge)``. ``kind`` says which model
    the input was in (``os-vif``, ``nova``, ``neutron``).
    """

    def __init__(self, problems: Sequence[tuple[str, str]], source: str | None = None,
                 *, kind: str | None = None) -> None:
        self.kind = kind
        super().__init__(problems, source)

    def with_source(self, source: str) -> InteropError:
        return InteropError(self.problems, source, kind=self.kind)

    def under(self, prefix: str) -> InteropError:
        """The same problems, located under ``prefix`` (``$[2]``, ``$.ports[1]``); paths that
        name an argument (not starting with ``$``) stay as they are."""
        return InteropError([(prefix + path[1:] if path.startswith("$") else path, message)
                             for path, message in self.problems],
                            self.source, kind=self.kind)

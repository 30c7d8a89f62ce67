"""The boxes of a C2PA Manifest Store (``application/c2pa``), read far enough to serve one manifest of it.

A store is a JUMBF superbox (ISO/IEC 19566-5): a ``jumb`` box whose first child, a ``jumd`` description
box, is labelled ``c2pa``, followed by one ``jumb`` superbox per C2PA Manifest, each labelled with its
manifest id (``urn:c2pa:...``). The last of them is the active manifest (C2PA 2.2, section 11.1). A box is
``LBox`` (4 bytes, big-endian, the whole box's length; 1: an 8-byte ``XLBox`` follows the type) and
``TBox`` (4 ASCII bytes); a description box holds a 16-byte type UUID, a toggles byte, and, when bit 1
of the toggles is set, a NUL-terminated UTF-8 label.

:func:`manifest_only` cuts a store down to one manifest, byte for byte as it was signed: what the C2PA Soft
Binding Resolution API's ``returnActiveManifest=true`` asks for. c2pa-python reads stores but does not cut
them, and no kept Python library parses JUMBF, hence these few lines::

    >>> desc = _box(b"jumd", bytes(16) + b"\\x03" + b"c2pa\\x00")
    >>> m1 = _box(b"jumb", _box(b"jumd", bytes(16) + b"\\x03" + b"urn:c2pa:one\\x00") + _box(b"free", b"x"))
    >>> m2 = _box(b"jumb", _box(b"jumd", bytes(16) + b"\\x03" + b"urn:c2pa:two\\x00"))
    >>> store = _box(b"jumb", desc + m1 + m2)
    >>> manifest_labels(store)
    ['urn:c2pa:one', 'urn:c2pa:two']
    >>> manifest_only(store, "urn:c2pa:two") == _box(b"jumb", desc + m2)
    True
    >>> manifest_only(store, "urn:c2pa:three")
    Traceback (most recent call last):
    ...
    provenance.manifest_store.StoreError: the manifest store holds no manifest 'urn:c2pa:three'
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from provenance.errors import ProvenanceError

__all__ = ["StoreError", "manifest_labels", "manifest_only"]


class StoreError(ProvenanceError):
    """The bytes are not a C2PA Manifest Store, or it lacks the manifest asked for."""


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """``(type, box start, payload start, box end)`` of each box in ``data[start:end]``."""
    at = start
    while at < end:
        if end - at < 8:
            raise StoreError(f"a box header at byte {at} is cut short")
        length, kind = struct.unpack_from(">I4s", data, at)
        head = 8
        if length == 1:
            if end - at < 16:
                raise StoreError(f"a box header at byte {at} is cut short")
            (length,) = struct.unpack_from(">Q", data, at + 8)
            head = 16
        elif length == 0:  # to the end of the enclosing box
            length = end - at
        if length < head or at + length > end:
            raise StoreError(f"the box at byte {at} claims {length} bytes, which its container does not hold")
        yield kind, at, at + head, at + length
        at += length


def _label(data: bytes, start: int, end: int) -> str | None:
    """The label of the superbox whose payload is ``data[start:end]`` (None: no description box, no label)."""
    for kind, _, payload, box_end in _boxes(data, start, end):
        if kind != b"jumd" or box_end - payload < 17:
            return None
        desc = data[payload:box_end]
        if not desc[16] & 0x02:
            return None
        nul = desc.find(b"\x00", 17)
        return desc[17:nul if nul >= 0 else len(desc)].decode("utf-8", "replace")
    return None


def _manifests(store: bytes) -> tuple[bytes, list[tuple[str | None, bytes]]]:
    """The store's header and description box, and each manifest superbox with its label."""
    boxes = list(_boxes(store, 0, len(store)))
    if len(boxes) != 1 or boxes[0][0] != b"jumb":
        raise StoreError("a C2PA Manifest Store is one JUMBF superbox ('jumb')")
    _, _, payload, end = boxes[0]
    if _label(store, payload, end) != "c2pa":
        raise StoreError("the superbox is not labelled 'c2pa': not a C2PA Manifest Store")
    children = list(_boxes(store, payload, end))
    desc = store[children[0][1]:children[0][3]]
    return desc, [(_label(store, p, e), store[s:e]) for kind, s, p, e in children[1:] if kind == b"jumb"]


def manifest_labels(store: bytes) -> list[str | None]:
    """The labels (manifest ids) of the store's manifests, in order: the last is the active manifest."""
    return [label for label, _ in _manifests(store)[1]]


def manifest_only(store: bytes, manifest_id: str) -> bytes:
    """A store holding only the manifest labelled ``manifest_id``, its bytes unchanged (so its claim signature
    still validates). The manifests of its ingredients are left out: a validator then rejects the ingredient
    claims with ``ingredient.manifest.missing`` (C2PA 2.2, section 15.11.3.3), which is what asking for the
    active manifest alone means. Raises :class:`StoreError` for bytes that are not a store, or a store without
    that manifest."""
    desc, manifests = _manifests(store)
    for label, box in manifests:
        if label == manifest_id:
            return _box(b"jumb", desc + box)
    raise StoreError(f"the manifest store holds no manifest {manifest_id!r}")

"""Which AI-labelling law's required elements a file carries: the ``labels`` section of a verification report.

For each law, each element it requires, whether it was found in this file and where. An element counts as
found only from evidence the verifier checked itself: the C2PA manifest when it validates (``Trusted`` or
``Valid``), the invisible watermark when its keyed tag verified, the MP4 metadata as read, and the release
record that the watermark or fingerprint led to. ``met`` is true when every element is found.

==================  =====================================================  ===================================
law                 element                                                where it is looked for
==================  =====================================================  ===================================
EU AI Act Art. 50   ``machine_readable``: marked as AI-made, machine-        a valid C2PA manifest whose
(2) and (4)         readable                                               source type is (trained)algorithmic
                    ``watermark``: an imperceptible mark                     the keyed watermark read back
                    ``visible_label``: disclosed on first exposure          the label the manifest declares
SB 942 / AB 853     ``provider``, ``system``, ``system_version``,             the manifest's disclosure, else the
(latent             ``created``, ``unique_id``                               release record found through the
disclosure)                                                                  watermark or fingerprint
GB 45438-2025       ``explicit_label``: "AI" + generated, >= 5 %, >= 2 s     the label the manifest declares
                    ``implicit_metadata``: ``AIGC`` with its 7 fields       the MP4 item ``AIGC``
                    ``implicit_xmp``: the same as XMP                         the XMP packet's ``TC260:AIGC``
==================  =====================================================  ===================================

Example::

    >>> from provenance.compliance import labels_report
    >>> from provenance.verify import C2paReport
    >>> report = labels_report(b"\\x00\\x00\\x00\\x08free", C2paReport.absent(), watermark_found=False)
    >>> [(law.key, law.met) for law in report.laws]
    [('eu_ai_act_art50', False), ('ca_sb942', False), ('gb_45438_2025', False)]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provenance.disclosure import read_implicit_label
from provenance.verify import C2paReport

__all__ = ["Element", "LabelsReport", "LawReport", "labels_report"]

_AI_SOURCES = ("/trainedAlgorithmicMedia", "/algorithmicMedia", "/compositeWithTrainedAlgorithmicMedia",
               "/compositeSynthetic")
_SB942 = (("provider", "provider"), ("system", "system"), ("system_version", "system_version"),
          ("created", "created"), ("unique_id", "content_id"))


@dataclass(frozen=True)
class Element:
    """One required element: ``found`` and ``where`` it was found (``None`` when not)."""

    name: str
    found: bool
    where: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"element": self.name, "found": self.found, "where": self.where}


@dataclass(frozen=True)
class LawReport:
    key: str
    law: str
    elements: tuple[Element, ...]

    @property
    def met(self) -> bool:
        return all(e.found for e in self.elements)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.elements if not e.found)

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law, "met": self.met, "missing": list(self.missing),
                "elements": [e.to_dict() for e in self.elements]}


@dataclass(frozen=True)
class LabelsReport:
    laws: tuple[LawReport, ...]

    def law(self, key: str) -> LawReport:
        return next(law for law in self.laws if law.key == key)

    def to_dict(self) -> dict[str, Any]:
        return {law.key: law.to_dict() for law in self.laws}


def labels_report(data: bytes, c2pa: C2paReport, *, watermark_found: bool,
                  record: Mapping[str, Any] | None = None) -> LabelsReport:
    """The labels section for the file ``data`` (bytes), given what verification already established: its
    C2PA report, whether the keyed watermark verified, and ``record``, the release record (``provider``,
    ``system``, ``system_version``, ``created``, ``content_id``) that the watermark or fingerprint led to."""
    valid = c2pa.state in ("Trusted", "Valid")
    disclosure = (c2pa.disclosure or {}) if valid else {}
    source = c2pa.digital_source_type or ""
    label = disclosure.get("visible_label") if isinstance(disclosure.get("visible_label"), Mapping) else None

    eu = LawReport("eu_ai_act_art50", "EU AI Act Article 50", (
        Element("machine_readable", valid and source.endswith(_AI_SOURCES),
                f"C2PA manifest ({c2pa.state}), digitalSourceType {source.rsplit('/', 1)[-1]}"
                if valid and source.endswith(_AI_SOURCES) else None),
        Element("watermark", watermark_found, "invisible watermark (keyed tag verified)" if watermark_found else None),
        Element("visible_label", label is not None, "visible label declared in the C2PA manifest" if label else None),
    ))

    found = disclosure.get("sb942")
    sb942: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    rec = record or {}
    elements = []
    for name, key in _SB942:
        if sb942.get(key):
            elements.append(Element(name, True, "C2PA manifest (org.consentgate.disclosure)"))
        elif rec.get(key):
            elements.append(Element(name, True, "release record found through the watermark or fingerprint"))
        else:
            elements.append(Element(name, False))
    ca = LawReport("ca_sb942", "California SB 942 (as amended by AB 853), latent disclosure", tuple(elements))

    implicit = read_implicit_label(data)
    explicit = label is not None and bool(label.get("ai_mark")) and _number(label.get("text_fraction")) >= 0.05 \
        and (_number(label.get("opening_s")) >= 2.0 or label.get("throughout") is True)
    gb = LawReport("gb_45438_2025", "GB 45438-2025", (
        Element("explicit_label", explicit, "visible label declared in the C2PA manifest" if explicit else None),
        Element("implicit_metadata", not implicit.missing("item") and implicit.item is not None
                and str(implicit.item.get("Label")) in ("1", "2", "3"), "MP4 metadata item AIGC"
                if implicit.item is not None and not implicit.missing("item") else None),
        Element("implicit_xmp", implicit.xmp is not None and not implicit.missing("xmp"),
                "XMP TC260:AIGC" if implicit.xmp is not None and not implicit.missing("xmp") else None),
    ))
    return LabelsReport((eu, ca, gb))



def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

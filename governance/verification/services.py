"""The verification report: C2PA state, the invisible watermark, and the matching record and log entry.

Works from the bytes alone; nothing uploaded for verification is written anywhere. The report is public
(anyone may verify): it says how many people a video shows and that each consented, and when, through
``cg-commit-v1`` commitments (:mod:`governance.generations.services.consent_record`), never their accounts, likenesses
or grants.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from governance.columns import iso
from governance.errors import Unavailable, UnsupportedMedia
from governance.generations.models import Generation
from governance.generations.services import consent_record
from governance.log.services import translog
from governance.softbinding.services import provenance_record
from governance.uploads import image_size
from governance.verification.models import ContentFingerprint
from governance.verification.reading import Read, read_upload

if TYPE_CHECKING:
    from governance.log.services.heads import TreeHeads
    from governance.runtime import Indexes
    from media.formats import Format
    from media.limits import Meter
    from provenance.verify import C2paReport
    from provenance.watermark import WatermarkKey

MISSING_FROM_LOG = "released here but missing from the transparency log"
AI_SOURCE_TYPES = ("/trainedAlgorithmicMedia", "/algorithmicMedia", "/compositeWithTrainedAlgorithmicMedia",
                   "/compositeSynthetic")


@dataclass(frozen=True)
class Records:
    """What a verification reads of the service's own records: the database ``session`` (generations, log
    entries), the fingerprint index kept in step with it (``indexes``), and the log's signed ``heads``."""

    session: Session
    indexes: Indexes
    heads: TreeHeads


def verify_bytes(data: bytes, records: Records | None = None, *, trust_anchors: Sequence[bytes] = (),
                 watermark_keys: Sequence[WatermarkKey] = (), meter: Meter | None = None) -> dict[str, Any]:
    """The verification report of ``data`` (any bytes). ``trust_anchors`` are the root certificates (PEM)
    whose signatures read ``Trusted``; the watermark is looked for with each of ``watermark_keys`` (none: not
    checked); ``records`` (None: offline, without the service's records) finds the generation, its log entry
    and the fingerprints of released videos.

    Every format c2pa-python reads gets its C2PA state (``provenance.verify``: a manifest that cannot be
    processed is a finding, never an error). The watermark and the fingerprint are read from one decode
    under ``meter`` (default: the service's verify limits); the report says plainly when one of them
    does not apply to the format (audio, documents; the fingerprint to stills). Raises ``LimitReached``
    (422) when the upload crosses a decoding limit, ``UnsupportedMedia`` (415) when nothing in it can be
    read.
    """
    from governance.admission import decode_limits, limit_error
    from governance.config import Settings
    from media.formats import HEAD_BYTES, sniff
    from media.limits import LimitExceeded, Meter
    from media.video import MediaError
    from provenance.errors import VerificationError, WatermarkError
    from provenance.verify import C2paReport, read_c2pa

    fmt = sniff(data[:HEAD_BYTES]) if data else None
    if fmt is None:
        raise UnsupportedMedia("expected an image, a video, an audio file or a PDF; the bytes are none of these")
    kind = fmt.kind
    meter = meter or Meter(decode_limits(Settings(), "verify"))
    if kind == "image" and fmt.pixels:
        image_size(data, meter)  # a decompression bomb is refused before anything decodes it, checks or not
    anchors = b"".join(trust_anchors) or None
    c2pa_error: VerificationError | None = None
    try:
        c2pa = read_c2pa(data, trust_anchors_pem=anchors)
    except VerificationError as e:
        # c2pa cannot read every container (WebM, odd layouts); the watermark may still speak for it
        c2pa, c2pa_error = C2paReport.absent("container.unsupported"), e
    report: dict[str, Any] = {"media_type": kind, "format": fmt.mime, "c2pa": c2pa.to_dict()}

    wm_applies, fp_applies = _applicable(fmt)
    checking_marks = wm_applies is None and bool(watermark_keys)
    checking_prints = fp_applies is None and records is not None
    if c2pa_error is not None and wm_applies is not None and fp_applies is not None:
        raise UnsupportedMedia(f"the file cannot be read: {c2pa_error}")
    try:
        read = read_upload(data, kind, watermark_keys=watermark_keys if checking_marks else (),
                           fingerprint=checking_prints, meter=meter)
    except LimitExceeded as e:
        raise limit_error(e) from e
    watermark: dict[str, Any] = {"checked": False}
    if wm_applies is not None:
        watermark.update(applies=False, reason=wm_applies)
    if checking_marks:
        try:
            mark = read.watermark()  # one decode serves every key: the evidence does not depend on it
            watermark = {"checked": True, "found": mark is not None, "keys_tried": len(watermark_keys)}
            if mark is not None:
                found, key = mark
                watermark.update(payload=found.payload.hex(), confidence=round(found.confidence, 4),
                                 frames_used=found.frames_used, key_id=key.key_id)
        except (MediaError, WatermarkError) as e:
            if c2pa_error is not None:
                raise UnsupportedMedia(f"the file cannot be read as a video: {e}") from e
            watermark = {"checked": False, "error": str(e)}
    report["watermark"] = watermark
    report["fingerprint"] = _fingerprint_matches(read, records)
    if fp_applies is not None:
        report["fingerprint"].update(applies=False, reason=fp_applies)

    manifest_cid = (c2pa.governance or {}).get("content_id") if c2pa.state in ("Trusted", "Valid") else None
    wm_cid = watermark.get("payload")
    fp_matches = report["fingerprint"].get("matches") or []
    fp_cid = fp_matches[0]["content_id"] if fp_matches else None
    content_id = manifest_cid or wm_cid or fp_cid
    report["content_id"] = content_id
    report["content_id_source"] = ("manifest" if manifest_cid else "watermark" if wm_cid
                                   else "fingerprint" if fp_cid else None)
    if manifest_cid and wm_cid and manifest_cid != wm_cid:
        report["warnings"] = ["the manifest and the watermark name different content ids"]

    record: dict[str, Any] | None = None
    session = records.session if records is not None else None
    if content_id and records is not None and session is not None:
        gen = session.exec(select(Generation).where(Generation.content_id == content_id)).first()
        if gen is not None:
            # public: how many people, that each consented and when, as commitments; never who they are
            record = {"generation_id": gen.id, "state": gen.state.value,
                      "released_at": iso(gen.released_at),
                      "taken_down": gen.taken_down_at is not None, "taken_down_at": iso(gen.taken_down_at),
                      "generator": gen.generator,
                      "consent": consent_record.public_summary(gen)}
            record.update(provenance_record(session, gen))
            entry = translog.find(session, content_id)
            if entry is not None:
                # the entry with its Merkle inclusion proof (check it with provenance.merkle.verify_inclusion)
                signed, unsigned_why = None, None
                try:
                    signed = records.heads.signed(session)
                except Unavailable as e:  # the report still carries the proof; only the head's signature is missing
                    unsigned_why = e.detail
                proof = translog.inclusion(session, entry.index, signed.tree_size if signed else None)
                record["log_entry"] = {k: proof[k] for k in (
                    "index", "entry_hash", "prev_hash", "video_sha256", "leaf_hash", "tree_size", "root_hash",
                    "inclusion_proof")}
                # the proof's root, signed: a statement the service cannot take back
                record["log_entry"]["signed_tree_head"] = signed.to_dict() if signed else None
                if unsigned_why:
                    record["log_entry"]["signed_tree_head_error"] = unsigned_why
                    report.setdefault("warnings", []).append(unsigned_why)
                # whether this upload is the very file that was released (a re-encode keeps the mark, not the bytes)
                record["log_entry"]["same_file"] = hashlib.sha256(data).hexdigest() == entry.video_sha256
                # what happened to it afterwards (taken down, an ancestor withdrawn, restored), each entry with
                # its inclusion proof under the same head: the log alone proves the release was withdrawn
                size = int(proof["tree_size"])  # type: ignore[call-overload]
                record["log_events"] = [_event_view(translog.inclusion(session, ev.index, size))
                                        for ev in translog.events_of(session, entry) if ev.index < size]
            elif gen.released_at is not None:  # the log lost it: say so, never a silent null
                record["log_entry"] = None
                record["log_entry_problem"] = MISSING_FROM_LOG
                report.setdefault("warnings", []).append(
                    f"generation {gen.id} was {MISSING_FROM_LOG}: the log may have been truncated")
    report["record"] = record
    from provenance.compliance import labels_report

    report["origin"], report["ai_generated"] = _origin(c2pa, bool(wm_cid), record)
    sb942 = (record or {}).get("latent_disclosure")
    report["labels"] = labels_report(data, c2pa, watermark_found=bool(wm_cid), record=sb942).to_dict() \
        if kind == "video" else {"applies": False, "reason": f"the labelling report reads MP4 videos, not {fmt.name}"}
    report["summary"] = _summary(c2pa.state, watermark, record, report["content_id_source"], report["origin"])
    return report


def _event_view(proof: dict[str, object]) -> dict[str, object]:
    """A version 3 log entry as a report shows it: its fields (what its hash covers) and its inclusion proof."""
    return {k: proof[k] for k in ("index", "kind", "cause", "release_index", "origin_index", "created_at",
                                  "entry_hash", "prev_hash", "leaf_hash", "tree_size", "root_hash", "inclusion_proof")}


def _origin(c2pa: C2paReport, watermarked: bool, record: dict[str, Any] | None) -> tuple[str, bool | None]:
    """What the evidence says about where the file comes from, and so whether it is AI-generated: ``None``
    when nothing says (no manifest, no watermark, no fingerprint match: the service cannot know)."""
    valid = c2pa.state in ("Trusted", "Valid")
    source = c2pa.digital_source_type or ""
    if record is not None or watermarked:
        return "consentgate", True
    if valid and source.endswith(AI_SOURCE_TYPES):
        return "declared_ai", True
    if valid and source:
        return "declared_not_ai", False
    return "unknown", None


def _applicable(fmt: Format) -> tuple[str | None, str | None]:
    """Why the watermark and the fingerprint do not apply to ``fmt`` (None: they do)."""
    if fmt.kind in ("audio", "document"):
        why = f"{fmt.name} is {'an audio file' if fmt.kind == 'audio' else 'a document'}: it has no frames"
        return why, why
    if not fmt.pixels:
        why = f"{fmt.name} cannot be decoded here"
        return why, why
    if fmt.kind == "image":
        return None, "a still image has no fingerprint: fingerprints describe released videos"
    return None, None


def _fingerprint_matches(read: Read, records: Records | None) -> dict[str, Any]:
    """Search the fingerprints of released videos (the soft binding for when manifest and watermark are gone)."""
    from provenance.errors import ProvenanceError

    try:
        fp = read.fingerprint()
    except ProvenanceError as e:
        return {"checked": False, "error": str(e)}
    if fp is None or records is None:
        return {"checked": False}
    session = records.session
    index = records.indexes.sync_fingerprints(session)
    matches = []
    for m in index.match(fp, max_results=3):
        row = session.get(ContentFingerprint, m.key)
        if row is not None:
            matches.append({"generation_id": m.key, "content_id": row.content_id, "distance": round(m.distance, 4)})
    return {"checked": True, "matches": matches}


def _summary(state: str, watermark: dict[str, Any], record: dict[str, Any] | None, source: str | None,
             origin: str = "consentgate") -> str:
    parts = {
        "Trusted": "C2PA manifest valid and signed by a trusted ConsentGate key",
        "Valid": "C2PA manifest valid, but the signer is not a trusted ConsentGate key",
        "Invalid": "C2PA manifest present but INVALID (tampered or badly signed)",
        "remote": "C2PA manifest kept remotely (not fetched)",
        "absent": "no C2PA manifest",
    }
    text = parts.get(state, state)
    if watermark.get("found"):
        text += f"; ConsentGate watermark found (content id {watermark['payload']})"
    elif watermark.get("checked"):
        text += "; no ConsentGate watermark found"
    if record:
        how = " by its perceptual fingerprint" if source == "fingerprint" else ""
        if record.get("taken_down"):
            # said plainly, first: the state alone ("released") would mislead
            when = str(record.get("taken_down_at") or "")[:10] or "an unknown date"
            text += (f"; matches generation {record['generation_id']}{how}, which was TAKEN DOWN on {when}: "
                     "ConsentGate no longer distributes it")
            logged = [e for e in record.get("log_events") or [] if e["kind"] == "takedown"]
            if logged:
                text += f" (transparency log entry {logged[-1]['index']})"
        else:
            text += f"; matches generation {record['generation_id']} ({record['state']}){how}"
        if record.get("log_entry_problem"):
            text += f"; FLAGGED: it was {record['log_entry_problem']}"
        if record.get("ancestor_withdrawn"):
            text += f"; an ancestor was withdrawn ({record['ancestor_withdrawn']['reason']})"
        consent = record.get("consent") or {}
        if consent.get("people"):
            held = "each consented" if consent.get("each_consented") else "consent did not hold at release"
            text += f"; it shows {consent['people']} enrolled person(s): {held}"
    elif origin == "unknown":
        text += "; UNKNOWN ORIGIN: no provenance, watermark or fingerprint match was found, which says nothing " \
                "about whether it is AI-generated"
    return text



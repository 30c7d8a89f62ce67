"""The verification report: C2PA state, the invisible watermark, and the matching record and log entry.

Works from the bytes alone; nothing uploaded for verification is written anywhere.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from governance.errors import InvalidInput, UnsupportedMedia
from governance.models import ContentFingerprint, Generation, iso
from governance.services import translog

if TYPE_CHECKING:
    from governance.runtime import Runtime

WATERMARK_FRAMES = 240  # enough evidence; a longer clip is not decoded further
MAX_VERIFY_PIXELS = 3840 * 2160


def verify_bytes(data: bytes, rt: Runtime | None, session: Session | None, *,
                 trust_anchors_pem: bytes | None = None) -> dict[str, Any]:
    """``rt``/``session`` may be None (offline verification without the service's keys or records)."""
    from media.video import MediaError, iter_frames, load_image, sniff_kind
    from provenance.errors import VerificationError, WatermarkError
    from provenance.verify import C2paReport, read_c2pa

    kind = sniff_kind(data[:16]) if data else None
    if kind is None:
        raise UnsupportedMedia("expected an image or a video file")
    if kind == "video":
        _check_size(data, rt.settings.verify_max_seconds if rt is not None else None)
    anchors = trust_anchors_pem
    if anchors is None and rt is not None and (rt.settings.keys_dir / "c2pa").exists():
        anchors = rt.signer_material.root_pem
    c2pa_error: VerificationError | None = None
    try:
        c2pa = read_c2pa(data, trust_anchors_pem=anchors)
    except VerificationError as e:
        if kind != "video":
            raise UnsupportedMedia(str(e)) from e
        # c2pa cannot read every container (WebM, odd MP4 layouts); the watermark may still speak for it
        c2pa, c2pa_error = C2paReport.absent("container.unsupported"), e
    report: dict[str, Any] = {"media_type": kind, "c2pa": c2pa.to_dict()}

    watermark: dict[str, Any] = {"checked": False}
    if rt is not None and (rt.settings.keys_dir / "watermark.key").exists():
        from provenance.watermark import detect

        try:
            def frames() -> Any:  # decoded again for each key tried (streamed: memory stays one frame)
                if kind == "video":
                    return (f for _, f in iter_frames(io.BytesIO(data), max_frames=WATERMARK_FRAMES))
                return load_image(data)[None]

            found, key_id = None, None
            for key in rt.watermark_keys:
                found = detect(frames(), key)
                if found is not None:
                    key_id = key.key_id
                    break
            watermark = {"checked": True, "found": found is not None, "keys_tried": len(rt.watermark_keys)}
            if found is not None:
                watermark.update(payload=found.payload.hex(), confidence=round(found.confidence, 4),
                                 frames_used=found.frames_used, key_id=key_id)
        except (MediaError, WatermarkError) as e:
            if c2pa_error is not None:
                raise UnsupportedMedia(f"the file cannot be read as a video: {e}") from e
            watermark = {"checked": False, "error": str(e)}
    report["watermark"] = watermark
    report["fingerprint"] = _fingerprint_matches(data, kind, rt, session)

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
    if content_id and session is not None:
        gen = session.exec(select(Generation).where(Generation.content_id == content_id)).first()
        if gen is not None:
            record = {"generation_id": gen.id, "state": gen.state.value,
                      "released_at": iso(gen.released_at),
                      "taken_down": gen.taken_down_at is not None, "generator": gen.generator,
                      "likenesses": [r.get("likeness") for r in gen.grants_relied],
                      "grants_relied": gen.grants_relied}
            entry = translog.find(session, content_id)
            if entry is not None:
                record["log_entry"] = {"index": entry.index, "entry_hash": entry.entry_hash,
                                       "prev_hash": entry.prev_hash, "video_sha256": entry.video_sha256}
    report["record"] = record
    report["ai_generated"] = bool(
        (c2pa.digital_source_type or "").endswith("trainedAlgorithmicMedia") or wm_cid or record
    )
    report["summary"] = _summary(c2pa.state, watermark, record, report["content_id_source"])
    return report


def _check_size(data: bytes, max_seconds: float | None) -> None:
    """Refuse, from the container header alone, videos too long or too large to verify on request."""
    from media.video import MediaError, probe

    try:
        info = probe(io.BytesIO(data))
    except MediaError:
        return  # c2pa may still read it; the decoders report their own errors
    if info.width * info.height > MAX_VERIFY_PIXELS:
        raise InvalidInput(f"the video is {info.width}x{info.height}; at most 3840x2160 can be verified")
    if max_seconds is not None and info.duration_s > max_seconds:
        raise InvalidInput(f"the video lasts {info.duration_s:.0f} s; at most {max_seconds:.0f} s can be verified "
                           "on request (verify a shorter excerpt: the watermark and fingerprint need only seconds)")


def _fingerprint_matches(data: bytes, kind: str, rt: Runtime | None, session: Session | None) -> dict[str, Any]:
    """Search the fingerprints of released videos (the soft binding for when manifest and watermark are gone)."""
    if kind != "video" or rt is None or session is None:
        return {"checked": False}
    from provenance.errors import ProvenanceError
    from provenance.fingerprint import fingerprint_video

    try:
        fp = fingerprint_video(io.BytesIO(data))
    except ProvenanceError as e:
        return {"checked": False, "error": str(e)}
    index = rt.sync_fingerprints(session)
    matches = []
    for m in index.match(fp, max_results=3):
        row = session.get(ContentFingerprint, m.key)
        if row is not None:
            matches.append({"generation_id": m.key, "content_id": row.content_id, "distance": round(m.distance, 4)})
    return {"checked": True, "matches": matches}


def _summary(state: str, watermark: dict[str, Any], record: dict[str, Any] | None, source: str | None) -> str:
    parts = {
        "Trusted": "C2PA manifest valid and signed by a trusted ConsentGate key",
        "Valid": "C2PA manifest valid, but the signer is not a trusted ConsentGate key",
        "Invalid": "C2PA manifest present but INVALID (tampered or badly signed)",
        "absent": "no C2PA manifest",
    }
    text = parts.get(state, state)
    if watermark.get("found"):
        text += f"; ConsentGate watermark found (content id {watermark['payload']})"
    elif watermark.get("checked"):
        text += "; no ConsentGate watermark found"
    if record:
        how = " by its perceptual fingerprint" if source == "fingerprint" else ""
        text += f"; matches generation {record['generation_id']} ({record['state']}){how}"
    return text



"""Soft binding resolution over the released videos (no Flask): the C2PA Soft Binding Resolution API's
lookups, the manifest stores it serves, and the provenance facts verification adds to a record.

:class:`ReleaseDirectory` is :class:`provenance.softbinding.ManifestDirectory` over the database: a watermark
payload is a content id; a fingerprint is searched in the runtime's fingerprint index, and each hit is
mapped to its release's manifest id. A release made before manifests were kept (migration 0011) has no
manifest id and is left out: the API only names manifests it can serve.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from governance.columns import iso
from governance.errors import BadRequest, NotFound, UnsupportedMedia
from governance.generations.models import Generation, GenerationState
from governance.softbinding.models import ReleaseManifest

if TYPE_CHECKING:
    from governance.runtime import Indexes
    from media.limits import Meter
    from provenance.softbinding import Match
    from provenance.watermark import WatermarkKey

MANIFEST_MIME = "application/c2pa"


class ReleaseDirectory:
    """Released manifests, looked up by watermark payload or by fingerprint."""

    def __init__(self, session: Session, indexes: Indexes) -> None:
        self.session, self.indexes = session, indexes

    def by_watermark(self, payload: bytes) -> Sequence[str]:
        row = self.session.exec(select(ReleaseManifest).where(ReleaseManifest.content_id == payload.hex())).first()
        return [row.manifest_id] if row is not None else []

    def by_fingerprint(self, fp: Any, max_results: int) -> Sequence[tuple[str, float]]:
        index = self.indexes.sync_fingerprints(self.session)
        out = []
        for m in index.match(fp, max_results=max_results):
            row = self.session.get(ReleaseManifest, m.key)
            if row is not None:
                out.append((row.manifest_id, m.distance))
        return out


def by_binding(session: Session, indexes: Indexes, alg: object, value: object, max_results: object) -> list[Match]:
    """``/matches/byBinding``: raises :class:`BadRequest` (400) for a query the API cannot answer."""
    from provenance.softbinding import BindingQueryError, resolve_by_binding

    if not isinstance(alg, str) or not alg:
        raise BadRequest("alg is required: a soft binding algorithm name (GET /services/supportedAlgorithms)")
    if not isinstance(value, str) or not value:
        raise BadRequest("value is required: the soft binding value, base64-encoded")
    try:
        return resolve_by_binding(ReleaseDirectory(session, indexes), alg, value, max_results=max_results)  # type: ignore[arg-type]
    except BindingQueryError as e:
        raise BadRequest(str(e)) from e


def by_content(session: Session, indexes: Indexes, watermark_keys: Sequence[WatermarkKey], data: bytes, *,
               alg: object, max_results: object, meter: Meter) -> list[Match]:
    """``/matches/byContent``: read the watermark (every key, current and retired) and the fingerprint from
    one decode of ``data``, then look both up. Raises :class:`UnsupportedMedia` (415) for what is not a video
    or an image, :class:`BadRequest` (400) for a bad ``alg`` or ``maxResults``."""
    from governance.verification.reading import read_upload
    from media.formats import HEAD_BYTES, sniff
    from provenance.errors import ProvenanceError
    from provenance.softbinding import BindingQueryError, resolve_by_content
    from provenance.watermark import EVIDENCE_MAX_SIDE

    if alg is not None and not isinstance(alg, str):
        raise BadRequest("alg must be a soft binding algorithm name")
    fmt = sniff(data[:HEAD_BYTES]) if data else None
    if fmt is None or fmt.kind not in ("video", "image") or not fmt.pixels:
        raise UnsupportedMedia("expected a video or an image in the request body")
    read = read_upload(data, fmt.kind, watermark_keys=watermark_keys, fingerprint=fmt.kind == "video", meter=meter)
    if not watermark_keys and fmt.kind == "image":  # nothing read the image: make sure it is one
        from media.video import MediaError, load_image

        try:
            load_image(data, meter=meter, max_side=EVIDENCE_MAX_SIDE)
        except MediaError as e:
            raise UnsupportedMedia(f"the asset cannot be decoded: {e}") from e
    if read.decode_error is not None and not watermark_keys:
        raise UnsupportedMedia(f"the asset cannot be decoded: {read.decode_error}")
    payload = None
    if watermark_keys:
        try:
            mark = read.watermark()
        except ProvenanceError:
            mark = None
        except Exception as e:  # a container the decoder could not read at all
            raise UnsupportedMedia(f"the asset cannot be decoded: {e}") from e
        payload = None if mark is None else mark[0].payload
    try:
        fp = read.fingerprint()
    except ProvenanceError:
        fp = None
    try:
        return resolve_by_content(ReleaseDirectory(session, indexes), watermark_payload=payload, fingerprint=fp,
                                  alg=alg, max_results=max_results)  # type: ignore[arg-type]
    except BindingQueryError as e:
        raise BadRequest(str(e)) from e


def manifest_store(session: Session, manifest_id: str, *, active_only: bool) -> bytes:
    """The manifest store (``application/c2pa``) whose active manifest is ``manifest_id``.

    ``active_only`` (``returnActiveManifest=true``): a store holding the active manifest alone, its bytes as
    signed (:func:`provenance.manifest_store.manifest_only`). For a remix that leaves out its ancestors'
    manifests, so a validator reading it alone rejects the ingredient claims (``ingredient.manifest.missing``);
    the whole store, the default, carries them. Raises :class:`NotFound` (404) for an unknown id."""
    from provenance.manifest_store import manifest_only

    row = session.exec(select(ReleaseManifest).where(ReleaseManifest.manifest_id == manifest_id)).first()
    if row is None:
        raise NotFound(f"no C2PA manifest {manifest_id!r}")
    if not active_only:
        return bytes(row.store)
    return manifest_only(bytes(row.store), row.manifest_id)  # a damaged stored store: StoreError, a 500


def provenance_record(session: Session, gen: Generation) -> dict[str, Any]:
    """What verification adds to a matched generation's public record: its manifest id, SB 942's latent
    disclosure as the release stated it (recoverable through the watermark when the metadata is gone), and
    whether an ancestor of a remix was withdrawn."""
    from governance.remix.lineage import ancestor_withdrawn

    out: dict[str, Any] = {}
    row = session.get(ReleaseManifest, gen.id)
    if row is not None and gen.state == GenerationState.RELEASED:
        out["manifest_id"] = row.manifest_id
        out["latent_disclosure"] = {"provider": row.provider, "system": row.system,
                                    "system_version": row.system_version, "created": iso(row.disclosed_at),
                                    "content_id": row.content_id}
    withdrawn = ancestor_withdrawn(session, gen.id)
    if withdrawn is not None:
        out["ancestor_withdrawn"] = withdrawn
    return out

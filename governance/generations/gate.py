"""The gate's stages, one function each, with typed inputs and outputs: what one generation goes through from
``prechecked`` to ``released`` (or ``blocked``). The job running around them (claims, leases, retries, stage
clocks, the quarantine files) is :mod:`governance.generations.pipeline`'s.

Each stage that reads or writes the database runs in its own :func:`stage_transaction`. A stage that blocks the
generation writes the block (state, reasons, audit, notifications) and raises :class:`Stopped`; the transaction
**commits** on ``Stopped``, so the block is kept, and rolls back on any other error, which the pipeline turns
into a retry or a block of its own. The stages between two transactions (generate, scan, seal) touch no
database. Consent is asked again at every transaction: a revocation that lands at any moment before the
release commits wins (:func:`consent_or_stop`).

    prepare -> (generate) -> scan_inputs -> scan -> judge_scan -> seal_order -> seal -> release
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, select

from governance.accounts.models import Account
from governance.accounts.services import notify
from governance.audit import Tag, record
from governance.characters import services as characters_svc
from governance.characters.models import Character
from governance.columns import utcnow
from governance.config import Settings
from governance.db import bump, serialize_consent
from governance.generations.models import Generation, GenerationCharacter, GenerationState
from governance.generations.services import consent_record
from governance.generations.services.generations import block, involved_owner_ids, link_likenesses
from governance.likenesses.models import Figure, Likeness, is_figure_key
from governance.likenesses.services import figures as figures_svc
from governance.likenesses.services.likenesses import ConsentCheck, check_consent, found_alongside, is_verified_claim
from governance.log.services import translog
from governance.references import reference_of
from governance.restrictions import drafts
from governance.softbinding.models import ReleaseManifest
from governance.verification.models import ContentFingerprint
from media.video import DEFAULT_CRF
from policies.characters import CharacterRule, judge
from policies.consent import public_figure_permits
from policies.decisions import Decision

if TYPE_CHECKING:
    import numpy as np

    from detectors.faces import FaceBackend
    from detectors.index import LikenessIndex
    from detectors.scan import ScanResult, TrackMatch
    from detectors.visual import CharacterSighting, OnnxImageEmbedder
    from generator.base import GenerationSpec, GeneratorInfo
    from media.video import Clip
    from provenance.c2pa_seal import Sealed as C2paSealed
    from provenance.keys import SignerMaterial, SignFn
    from provenance.watermark import WatermarkKey

#: The decision rule a later claim on a face is recorded under when the scan let it defer to the earlier claim.
DEFERRED = "likeness:disputed:deferred"
#: Multiples of the watermark's default strength (~39 dB PSNR) tried in turn until the mark reads back.
WATERMARK_BOOSTS = (1, 2, 3)
#: H.264 constant rate factor of the released file (x264's scale: lower is closer to the frames):
#: :data:`media.video.DEFAULT_CRF`, which says where 18 comes from. The watermark's robustness figures in
#: docs/watermark.md were measured on releases at this setting.
RELEASE_CRF = DEFAULT_CRF
#: The covered provider SB 942's latent disclosure names, and GB 45438's ``ContentProducer``.
PROVIDER = "ConsentGate"


class Stopped(Exception):
    """The generation is blocked (the stage wrote the block) or no longer in the state the stage expects
    (taken down, blocked meanwhile, taken over by another worker): stop this try quietly. The stage's
    transaction commits (:func:`stage_transaction`)."""


@contextmanager
def stage_transaction(engine: sa.Engine) -> Iterator[Session]:
    """One stage's transaction. It commits when the stage ends normally **and when it raises**
    :class:`Stopped` (a stage that blocks the generation keeps the block and its reasons); any other error
    rolls it back and propagates."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except Stopped:
            session.commit()
            raise
        except BaseException:
            session.rollback()
            raise
        session.commit()


def advance(session: Session, gen: Generation, state: GenerationState) -> None:
    gen.state = state
    gen.updated_at = utcnow()
    session.add(gen)


def involved_ids(gen: Generation) -> list[str]:
    """The likenesses a generation involves: named in the request, then found by the scan (each once)."""
    return list(dict.fromkeys([*gen.likeness_ids, *(f["likeness"] for f in gen.faces_found)]))


# -- consent, asked again at every stage ------------------------------------------------------------------------
def consent_or_stop(session: Session, gen: Generation, likeness_ids: Iterable[str], stage: str, *,
                    lock: bool = False) -> list[ConsentCheck]:
    """Consent of every likeness involved, and of every protected figure the generation was allowed to
    show (through the likenesses approved as them), asked again now in one pass (with ``lock``, one lock
    order for all of them); any denial blocks the generation (:class:`Stopped`). Returns the involved
    likenesses' checks, in the order of ``likeness_ids``."""
    involved = list(likeness_ids)
    figures = _figures_allowed(session, gen)
    approved = {f.id: figures_svc.approved_ids(session, f.id) for f in figures}
    deferrals: dict[str, set[str]] = {}  # later claims that deferred at the scan, to the earlier claim
    for d in gen.decisions:
        if d["rule"] == DEFERRED and d.get("likeness") in involved:
            deferrals.setdefault(d["likeness"], set()).add(d["defers_to"])
    every = list(dict.fromkeys([*involved, *(i for ids in approved.values() for i in ids),
                                *(h for hs in deferrals.values() for h in hs)]))
    checks = {c.likeness_id: c for c in check_consent(session, every, gen.requester_id, lock=lock,
                                                      seen_with=deferrals)}
    reasons = [checks[i].decision.reason for i in involved if not checks[i].decision.allowed]
    for f in figures:
        again = public_figure_permits(f.id, f.name, f"the generation involves {f.name!r}",
                                      [checks[i].decision for i in approved[f.id]])
        if not again.allowed:
            reasons.append(again.reason)
    if reasons:
        block(session, gen, [f"consent no longer holds at {stage}: {r}" for r in dict.fromkeys(reasons)],
              stage=stage, notify_owners=involved_owner_ids(session, gen))
        raise Stopped
    return [checks[i] for i in involved]


def _figures_allowed(session: Session, gen: Generation) -> list[Figure]:
    """The protected figures an allow decision of the generation names (one removed from the gallery is not
    protected any more)."""
    figures: list[Figure] = []
    for d in gen.decisions:
        figure_id = figures_svc.figure_of(d["rule"]) if d["decision"] == "allow" else None
        figure = session.get(Figure, figure_id) if figure_id else None
        if figure is not None and figure not in figures:
            figures.append(figure)
    return figures


# -- generating -------------------------------------------------------------------------------------------------
def prepare(session: Session, gen: Generation, settings: Settings, generator: GeneratorInfo) -> GenerationSpec:
    """``generating`` (the pipeline claimed the job): consent of the named likenesses again, then what the
    generator is asked for: the prompt, the seed and the named likenesses' reference faces, at the service's
    duration, frame size and rate. Records which generator makes it."""
    from detectors.enroll import Template
    from generator.base import GenerationSpec

    consent_or_stop(session, gen, gen.likeness_ids, "generation")
    faces = []
    for lid in gen.likeness_ids:
        lk = session.get(Likeness, lid)
        assert lk is not None  # consent_or_stop denies deleted likenesses
        faces.append(reference_of(session, lid, Template.from_bytes(lk.template)))  # the file store's, decrypted
    gen.generator = f"{generator.name}/{generator.version}"
    session.add(gen)
    return GenerationSpec(prompt=gen.prompt, seed=gen.seed, faces=tuple(faces), duration_s=settings.duration_s,
                          width=settings.frame_size, height=settings.frame_size, fps=settings.fps)


def refused(session: Session, gen: Generation, why: str) -> None:
    """The generator cannot serve the request (:class:`generator.base.GeneratorError`: faces that cannot be
    laid out in the frame, a spec it cannot serve, a model that cannot load): block with its reason, as the
    requester may read it (``why`` without server paths), rather than as an internal error."""
    block(session, gen, [f"the generator could not serve the request: {why}"], stage="generating", notify_owners=set())


# -- scanning ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScanInputs:
    """What the scan compares the output with, read in the transaction that enters ``scanning``: the likeness
    index (every enrolled likeness and protected figure) and the characters' reference embeddings."""

    index: LikenessIndex
    references: tuple[tuple[str, np.ndarray], ...]


@dataclass(frozen=True)
class Sighting:
    """What the output shows: faces (matched, near misses and the uncertain band) and registered characters."""

    faces: ScanResult
    characters: tuple[CharacterSighting, ...]


def scan_inputs(session: Session, gen: Generation, index_now: Callable[[Session], LikenessIndex],
                encoder: OnnxImageEmbedder | None) -> ScanInputs:
    """``generating`` -> ``scanning``: consent of the named likenesses again, then the index brought up to
    date and the references of the operator's image encoder (none without one)."""
    consent_or_stop(session, gen, gen.likeness_ids, "scan")
    advance(session, gen, GenerationState.SCANNING)
    index = index_now(session)
    references = characters_svc.references(session, None, encoder.name) if encoder else []
    return ScanInputs(index, tuple(references))


def scan(clip: Clip, inputs: ScanInputs, backend: FaceBackend, threshold: float, settings: Settings,
         encoder: OnnxImageEmbedder | None) -> Sighting:
    """Every face in the output against every enrolled likeness and figure (:func:`detectors.scan.scan_frames`),
    and sampled frames against the characters' references (``character_threshold``). No database."""
    from detectors.scan import scan_frames

    faces = scan_frames(clip.frames, clip.fps, inputs.index, backend, threshold=threshold,
                        thorough_every_s=settings.scan_thorough_every_s)
    if encoder is None or not inputs.references:
        return Sighting(faces, ())
    from detectors.visual import best_matches, sample_indices

    indices = sample_indices(len(clip.frames), clip.fps)
    embeddings = encoder.embed([clip.frames[i] for i in indices])
    assert settings.character_threshold is not None  # Settings refuses a model without a threshold
    return Sighting(faces, tuple(best_matches(embeddings, indices, list(inputs.references),
                                              settings.character_threshold)))


def judge_scan(session: Session, gen: Generation, seen: Sighting, frames: np.ndarray, scan_uncertain: str) -> None:
    """``scanning`` -> ``sealing``, or blocked (or held) with the reasons: the characters the output shows under
    their rules, the faces it shows under their likenesses' consent and the protected figures' protection,
    then the uncertain band (``scan_uncertain``: ``held`` or ``block``)."""
    judge_characters_seen(session, gen, seen.characters)
    faces = replace(seen.faces, matches=tuple(m for m in seen.faces.matches if not is_figure_key(m.likeness_id)))
    _record_faces(session, gen, faces)
    # Protected figures share the face index; they are judged by their own rule, not listed as faces.
    judge_figures_seen(session, gen, [m for m in seen.faces.matches if is_figure_key(m.likeness_id)])
    judge_faces_seen(session, gen, faces)
    judge_uncertain(session, gen, seen.faces, frames, scan_uncertain)
    advance(session, gen, GenerationState.SEALING)


def _record_faces(session: Session, gen: Generation, faces: ScanResult) -> None:
    """The record names each face once, after its nearest likeness (``faces_found``); every likeness within
    the threshold of a face (a near miss too) must still allow the requester: :func:`judge_faces_seen`."""
    attributed = faces.attributed()
    gen.faces_found = [m.to_dict() for m in attributed]
    link_likenesses(session, gen.id, list(dict.fromkeys(m.likeness_id for m in attributed)), found=True)
    session.add(gen)


def judge_faces_seen(session: Session, gen: Generation, faces: ScanResult) -> None:
    """Every likeness within the threshold of a face in the output must allow the requester now; a later claim
    on a face that deferred to the earlier one is kept with the decisions (the seal and the release ask both
    again). Whoever's rule blocked it may see the draft that may show them, and is told; an unproven claim on a
    face (photo, disputed, under review) blocks it but learns nothing of it."""
    near = list(dict.fromkeys(m.likeness_id for m in faces.matches))
    checks = check_consent(session, near, gen.requester_id,
                           seen_with=found_alongside([m.to_dict() for m in faces.matches], gen.likeness_ids))
    gen.decisions = [*gen.decisions, *({**c.decision.to_dict(), "likeness": c.likeness_id,
                                        "defers_to": c.defers_to} for c in checks if c.defers_to)]
    denied = [c for c in checks if not c.decision.allowed]
    if not denied:
        return
    nearest: dict[str, TrackMatch] = {}
    for m in faces.matches:
        if m.likeness_id not in nearest or m.distance < nearest[m.likeness_id].distance:
            nearest[m.likeness_id] = m
    reasons = [f"the face of likeness {c.likeness_id} appears in the output (distance "
               f"{nearest[c.likeness_id].distance:.2f}, frames {nearest[c.likeness_id].first_frame}-"
               f"{nearest[c.likeness_id].last_frame}) without consent: {c.decision.reason}" for c in denied]
    link_likenesses(session, gen.id, [c.likeness_id for c in denied], found=True)
    owners = involved_owner_ids(session, gen) | {
        c.owner_id for c in denied
        if (lk := session.get(Likeness, c.likeness_id)) is not None and is_verified_claim(lk)}
    block(session, gen, reasons, stage="scan", notify_owners=owners)
    raise Stopped


def judge_figures_seen(session: Session, gen: Generation, matches: list[TrackMatch]) -> None:
    """Each protected public figure whose face the output shows: allowed only when a live-verified likeness
    an admin approved as them consents to the requester; recorded with the decisions, blocking when not."""
    decisions = []
    for figure_id in dict.fromkeys(m.likeness_id for m in matches):
        figure = session.get(Figure, figure_id)
        if figure is None:  # removed from the gallery meanwhile
            continue
        m = min((m for m in matches if m.likeness_id == figure_id), key=lambda m: m.distance)
        subject = (f"the output shows {figure.name!r} (distance {m.distance:.2f}, frames "
                   f"{m.first_frame}-{m.last_frame})")
        decisions.append(figures_svc.decide(session, figure, gen.requester_id, subject))
    _record_or_stop(session, gen, decisions)


def judge_characters_seen(session: Session, gen: Generation, seen: Iterable[CharacterSighting]) -> None:
    """Each character the output shows, named or not, under its rule for the requester: recorded with
    the generation's decisions (and its usage), and blocking when the rule denies."""
    policies = {p.character_id: p for p in characters_svc.policies(session)}
    decisions = []
    for sighting in seen:
        policy = policies.get(sighting.character_id)
        if policy is None:  # deleted meanwhile: its rights holder no longer asks for anything
            continue
        subject = (f"the output shows {policy.name!r} (similarity {sighting.similarity:.2f}, frames "
                   f"{sighting.frames[0]}-{sighting.frames[-1]})")
        decision = judge(policy, gen.requester_id, subject)
        decisions.append(decision)
        row = session.get(GenerationCharacter, (gen.id, policy.character_id))
        if row is None:
            session.add(GenerationCharacter(generation_id=gen.id, character_id=policy.character_id,
                                            allowed=decision.allowed))
        elif not decision.allowed:
            row.allowed = False
            session.add(row)
    _record_or_stop(session, gen, decisions)


def _record_or_stop(session: Session, gen: Generation, decisions: list[Decision]) -> None:
    """Add what the scan saw and decided to the generation's decisions; any denial blocks it (stage scan)."""
    gen.decisions = [*gen.decisions, *(d.to_dict() for d in decisions)]
    session.add(gen)
    denials = [d.reason for d in decisions if not d.allowed]
    if denials:
        block(session, gen, denials, stage="scan", notify_owners=set())
        raise Stopped


def judge_uncertain(session: Session, gen: Generation, result: ScanResult, frames: np.ndarray,
                    scan_uncertain: str) -> None:
    """A face in the uncertain band of a likeness the requester may not use (``detectors.pose``: further
    than its match distance, within its protect distance) is never passed silently: the generation is held
    for that likeness owner's review (``scan_uncertain = "held"``,
    :mod:`governance.generations.services.reviews`) or blocked with the reason (``"block"``). A likeness
    whose owner dismissed this generation is not asked again when the job runs once more."""
    from governance.generations.services import reviews

    skip = reviews.dismissed(session, gen.id) if result.uncertain else set()
    nearest: dict[str, TrackMatch] = {}
    for m in result.uncertain:
        held = nearest.get(m.likeness_id)
        if m.likeness_id not in skip and (held is None or m.distance < held.distance):
            nearest[m.likeness_id] = m
    if not nearest:
        return
    denied = [c for c in check_consent(session, list(nearest), gen.requester_id) if not c.decision.allowed]
    if not denied:
        return
    if scan_uncertain == "held" and all(c.owner_id for c in denied):
        reviews.hold(session, gen, [(c.likeness_id, c.owner_id, nearest[c.likeness_id]) for c in denied], frames,
                     result)
        raise Stopped
    link_likenesses(session, gen.id, [c.likeness_id for c in denied])
    reasons = [f"{reviews.band_reason(c.likeness_id, nearest[c.likeness_id])}, without consent: {c.decision.reason}"
               for c in denied]
    block(session, gen, reasons, stage="scan",
          notify_owners=involved_owner_ids(session, gen) | {c.owner_id for c in denied})
    raise Stopped


# -- sealing ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SealOrder:
    """What the seal writes into the file, fixed in the transaction that checked consent for it: the content id
    (the watermark's payload), the requester's name for the notifications, and the manifest's governance
    assertion (public: it names nobody; the watermark's strength is added by :func:`seal`)."""

    generation_id: str
    content_id: str
    requester_name: str
    governance: dict[str, Any]
    parent: tuple[Path, str] | None = None  # a remix's parent: its signed file and title (an inputTo ingredient)


def seal_order(session: Session, gen: Generation, faces: ScanResult, thorough_every_s: float, *,
               videos_dir: Path | None = None, label: characters_svc.LabelFont | None = None) -> SealOrder:
    """``sealing``: consent of every likeness named or found, again (a revocation during generation wins); a
    fresh 64-bit content id; the consent record sealed (its openings stay in the database). A remix's parent
    (in ``videos_dir``) must still be released and stored, or the remix is blocked. A credit the visible
    ``label`` cannot draw (a character only the scan found, or a credit changed since the precheck) blocks it
    with that reason, before anything is sealed, never as an internal error of the seal."""
    parent = _remixed(session, gen, videos_dir) if videos_dir is not None else None
    checks = consent_or_stop(session, gen, involved_ids(gen), "seal")
    attributions = _attributions(session, gen)
    uncredited = [(a, missing) for a in attributions
                  if label is not None and (missing := label.cannot_draw(a["credit"]))]
    if uncredited:
        block(session, gen, [f"the rights holder of {a['name']!r} requires the credit {a['credit']!r}, but the "
                             f"visible label cannot draw {missing!r} of it (its font has no glyph for them), so no "
                             "release can credit it" for a, missing in uncredited], stage="seal", notify_owners=set())
        raise Stopped
    gen.content_id = secrets.token_hex(8)
    requester = session.get(Account, gen.requester_id)
    gen.grants_relied = consent_record.seal(session, gen, checks)
    session.add(gen)
    governance = _governance_assertion(gen, faces, thorough_every_s)
    governance["attributions"] = attributions
    return SealOrder(gen.id, gen.content_id, requester.name if requester else gen.requester_id, governance, parent)


def _remixed(session: Session, gen: Generation, videos_dir: Path) -> tuple[Path, str] | None:
    """The signed file and title of the generation ``gen`` remixes, or None; a parent withdrawn since the
    request (taken down, no longer stored) blocks the remix."""
    from governance.remix.lineage import parents

    found = parents(session, gen.id)
    if not found:
        return None
    parent = session.get(Generation, found[0])
    path = videos_dir / f"{found[0]}.mp4"
    if parent is None or parent.taken_down_at is not None or parent.state is not GenerationState.RELEASED \
            or not path.is_file():
        block(session, gen, [f"the generation it remixes ({found[0]}) was withdrawn"], stage="seal",
              notify_owners=set())
        raise Stopped
    return path, f"ConsentGate generation {parent.id}"


def _governance_assertion(gen: Generation, scan: ScanResult, thorough_every_s: float) -> dict[str, Any]:
    """The manifest's ``org.consentgate.governance`` assertion: public, so it names nobody. The requester,
    the prompt and each likeness, owner and grant appear as ``cg-commit-v1`` commitments whose openings
    stay in the record (:mod:`governance.generations.services.consent_record`); decisions whose reasons name
    likeness or grant ids are left to those commitments."""
    return {
        "generation_id": gen.id,
        "content_id": gen.content_id,
        **consent_record.public_assertion(gen),
        "generator": gen.generator,
        "face_scan": {  # how the output was scanned: which faces a verifier can rely on having been checked
            "backend": scan.backend, "detector": scan.detector, "threshold": scan.threshold,
            "frames": scan.frame_count,
            "frames_scanned": scan.frames_scanned, "keyframes": scan.keyframes, "tracks": len(scan.tracks),
            "smallest_face_px": scan.smallest_face_px,
            "thorough_every_s": thorough_every_s,
        },
        "decisions": consent_record.public_decisions(gen.decisions),
    }


def _attributions(session: Session, gen: Generation) -> list[dict[str, str]]:
    """The credits the characters this generation names require (the attribution rule), as their
    rights holders state them now: each goes into the visible label and the manifest."""
    rows = session.exec(select(GenerationCharacter).where(GenerationCharacter.generation_id == gen.id,
                                                          GenerationCharacter.allowed == True)  # noqa: E712
                        .order_by(GenerationCharacter.character_id)).all()  # type: ignore[arg-type]
    out = []
    for row in rows:
        ch = session.get(Character, row.character_id)
        if ch is not None and ch.rule == CharacterRule.ATTRIBUTION and ch.attribution:
            out.append({"character": ch.id, "name": ch.name, "credit": ch.attribution})
    return out


@dataclass(frozen=True)
class Sealer:
    """What sealing needs of the service: the generator's identity (for the manifest), the watermark key and
    the C2PA signer (key material, or a KMS/HSM callback), and a time-stamp authority if any."""

    generator: GeneratorInfo
    watermark_key: WatermarkKey
    signer: SignerMaterial
    sign_fn: SignFn | None
    tsa_url: str | None
    label_language: str = "en"  # the visible label's text (provenance.label.LABEL_TEXT) and its font
    label_font: str | None = None
    embed_threads: int | None = None  # the watermark embed's threads (None: provenance.watermark.embed_threads())


@dataclass(frozen=True)
class Sealed:
    """A sealed file at ``path``: its released frames' fingerprint, the governance assertion as signed, the
    manifest (id and store, kept for the Soft Binding Resolution API) and the SB 942 disclosure it states."""

    path: Path
    fingerprint: bytes
    governance: dict[str, Any]
    manifest: C2paSealed | None = None
    disclosed_at: datetime | None = None
    system: str = ""
    system_version: str = ""


def seal(clip: Clip, order: SealOrder, sealer: Sealer, marked: Path, final: Path) -> Sealed:
    """One output for three labelling laws (docs/provenance.md), in order:

    1. the moving visible label (:func:`provenance.label.draw_label`: the "AI" mark, "AI-generated" or, with
       ``sealer.label_language`` ``zh``, "人工智能生成" in a CJK font, the requester's public handle, the
       attributions rights holders require), drawn into the frames in place;
    2. the invisible watermark (payload: the content id), read back from the encoded file (``marked``, in
       quarantine) and made stronger while it cannot be (small, noisy frames drown the default strength);
       :class:`provenance.errors.WatermarkError` when it never reads back: nothing leaves unmarked;
    3. GB 45438's implicit label (the ``AIGC`` item and its XMP) written into the encoded MP4, before signing;
    4. the signed C2PA manifest into ``final``: the generator's ``digitalSourceType``, ``c2pa.watermarked``,
       soft bindings for the watermark and the fingerprint, SB 942's latent disclosure and the label's
       declaration, a remix's parent as an ``inputTo`` ingredient; :func:`provenance.c2pa_seal.seal_video`
       reads it back with c2pa-python and checks all of that before the file replaces ``final``.
    """
    from media.video import write_video
    from provenance.c2pa_seal import Ingredient, ManifestSpec, seal_video
    from provenance.disclosure import Disclosure, write_implicit_label
    from provenance.errors import WatermarkError
    from provenance.fingerprint import fingerprint_clip
    from provenance.label import LabelSpec, declaration, draw_label
    from provenance.softbinding import FINGERPRINT_ALG, WATERMARK_ALG, SoftBinding
    from provenance.watermark import DEFAULT_STRENGTH, DETECT_MAX_FRAMES, detect_video, embed

    governance = dict(order.governance)
    credits = tuple(a["credit"] for a in governance.get("attributions", []))
    label = LabelSpec(order.requester_name, issuer=PROVIDER, credits=credits, language=sealer.label_language,
                      font=sealer.label_font)
    labelled = clip.frames if clip.frames.flags.writeable else clip.frames.copy()
    placements = draw_label(labelled, clip.fps, label)
    payload = bytes.fromhex(order.content_id)
    info = sealer.generator
    weights = "learned weights" if info.learned_weights else "no learned weights"
    for boost in WATERMARK_BOOSTS:
        strength = DEFAULT_STRENGTH * boost
        frames = embed(labelled, payload, sealer.watermark_key, strength=strength, threads=sealer.embed_threads)
        write_video(marked, clip.with_frames(frames), crf=RELEASE_CRF, mode=0o600, metadata={
            "comment": f"AI-generated by {info.name} {info.version} ({weights}); sealed by {PROVIDER}; "
                       f"content id {order.content_id}",
            "encoder": PROVIDER,
        })
        found = detect_video(marked, sealer.watermark_key, max_frames=DETECT_MAX_FRAMES, early=True)
        if found is not None and found.payload == payload:
            governance["watermark"] = {"strength": strength, "read_back_confidence": round(found.confidence, 3)}
            break
    else:
        raise WatermarkError(f"the invisible watermark could not be read back from the encoded video, even at "
                             f"{WATERMARK_BOOSTS[-1]}x its strength: nothing is released unmarked")
    released = clip.with_frames(frames)
    fingerprint = fingerprint_clip(released, query_views=False).to_bytes()
    disclosed_at = utcnow()
    disclosure = Disclosure(provider=PROVIDER, system=info.name, system_version=info.version, created=disclosed_at,
                            content_id=order.content_id, creator_handle=label.handle,
                            digital_source_type=info.digital_source_type, reserved1=sealer.watermark_key.key_id)
    write_implicit_label(marked, disclosure)
    duration = released.duration_s
    spec = ManifestSpec(
        title=f"ConsentGate generation {order.generation_id}", generator_name=info.name,
        generator_version=info.version, learned_weights=info.learned_weights,
        digital_source_type=info.digital_source_type, governance=governance,
        soft_bindings=(
            SoftBinding.whole_clip(WATERMARK_ALG, payload, duration, watermark=True, name="ConsentGate watermark"),
            SoftBinding.whole_clip(FINGERPRINT_ALG, fingerprint, duration, watermark=False,
                                   name="ConsentGate fingerprint"),
        ),
        disclosure={"sb942": disclosure.latent(), "gb45438": disclosure.aigc(),
                    "visible_label": declaration(placements, released.height, released.width, clip.fps, label)},
        ingredients=(Ingredient(*order.parent),) if order.parent is not None else (),
    )
    manifest = seal_video(marked, final, spec, sealer.signer, sign_fn=sealer.sign_fn, tsa_url=sealer.tsa_url,
                          mode=0o600)
    return Sealed(final, fingerprint, governance, manifest, disclosed_at, info.name, info.version)


# -- release ----------------------------------------------------------------------------------------------------
def release(session: Session, gen: Generation, order: SealOrder, sealed: Sealed, *,
            draft_ttl_s: float = Settings.draft_approval_ttl_s) -> int:
    """``sealing`` -> ``released``, in one transaction that holds the consent locks for its final check and its
    commit (a consent change waits, or is seen): consent once more, the transparency-log entry, the
    fingerprint, the audit event, the owners' notifications. Returns the log index.

    A likeness whose owner approves drafts (:mod:`governance.restrictions.drafts`) stops it here instead: the
    generation is ``held`` for ``draft_ttl_s`` seconds, the sealed file kept as the owner's preview."""
    serialize_consent(session, involved_owner_ids(session, gen))
    consent_or_stop(session, gen, involved_ids(gen), "release", lock=True)
    asked = drafts.owners_to_ask(session, gen, involved_ids(gen))
    if asked:
        drafts.hold(session, gen, asked, sealed.path, draft_ttl_s)
        raise Stopped
    video_sha = translog.file_sha256(sealed.path)
    entry = translog.append(session, gen.id, order.content_id, video_sha,
                            hashlib.sha256(_canonical(sealed.governance)).hexdigest())
    gen.video_sha256 = video_sha
    gen.released_at = utcnow()
    session.add(ContentFingerprint(generation_id=gen.id, content_id=order.content_id, data=sealed.fingerprint))
    if sealed.manifest is not None:  # kept for the C2PA Soft Binding Resolution API (governance.softbinding)
        session.add(ReleaseManifest(generation_id=gen.id, manifest_id=sealed.manifest.manifest_id,
                                    content_id=order.content_id, store=sealed.manifest.store, provider=PROVIDER,
                                    system=sealed.system, system_version=sealed.system_version,
                                    disclosed_at=sealed.disclosed_at or utcnow()))
    session.flush()
    bump(session, "fingerprints")
    advance(session, gen, GenerationState.RELEASED)
    record(session, Tag.GENERATION_RELEASE, actor_id=None, subject=gen.id, content_id=order.content_id,
           log_index=entry.index)
    for owner in involved_owner_ids(session, gen) - {gen.requester_id}:
        notify(session, owner, "likeness:use:released",
               f"{order.requester_name} used your likeness in generation {gen.id}; it was released",
               generation_id=gen.id)
    return entry.index


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()

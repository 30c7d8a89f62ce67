"""The consent record of a sealed generation: what the public sees, and what only a regulator or the person
named may open.

The public record (the C2PA manifest's governance assertion, the anonymous verification report) must prove
that everyone in a video consented, and when, without saying who they are. So it holds a ``cg-commit-v1``
commitment (:mod:`provenance.commitments`) for the requester, the prompt, and each likeness, its owner and
the grant relied on; the openings stay here. At seal the gate writes them into ``Generation.grants_relied``
(a JSON column, so no migration), one entry per party, each with its own random salt::

    [{"kind": "requester", "account": "acc_...", "salt": "<64 hex>", "checked_at": "<ISO 8601>"},
     {"kind": "likeness", "likeness": "lk_...", "owner": "acc_...", "grant": "gr_..." | None,
      "rule": "likeness:approved", "reason": "...", "basis": "grant", "since": "<ISO 8601>" | None,
      "named": True, "found": True, "verification": "live", "status": "active", "salt": "<64 hex>"},
     ...]

A salt per entry (rather than per generation) means that opening one entry to the person it names tells
them nothing about anyone else in the video. Before the seal the column holds the precheck's grants
(entries without ``kind``); generations sealed before this record existed have no ``requester`` entry.

Who may open what (:func:`open_record`): regulators and admins every entry; the requester their own
(account and prompt); the owner of a likeness the entries for their likenesses. Each opening is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from governance.accounts.models import Account, Role
from governance.audit import Tag, record
from governance.columns import iso, utcnow
from governance.errors import Conflict, NotFound
from governance.generations.models import Generation, GenerationState
from governance.likenesses.models import Grant
from provenance.commitments import SCHEME, Opening, commit, new_salt

#: How a person's consent was given, as the public record says it (never who gave it).
BASES = ("own_likeness", "open_to_everyone", "grant", "mutual_contact", "earlier_claim")


def seal(session: Session, gen: Generation, checks: Sequence[Any], *, now: datetime | None = None
         ) -> list[dict[str, Any]]:
    """The consent record for ``gen`` from the seal's consent ``checks`` (each allowed; :class:`ConsentCheck`
    from ``check_consent``), with fresh salts: what the gate stores in ``grants_relied``. Pure but for
    reading the grants' creation times."""
    if any(not c.decision.allowed for c in checks):
        raise ValueError("a consent record is sealed only when every likeness in it allows the requester")
    found = {f["likeness"] for f in gen.faces_found}
    entries: list[dict[str, Any]] = [{"kind": "requester", "account": gen.requester_id, "salt": new_salt().hex(),
                                      "checked_at": iso(now or utcnow())}]
    for c in checks:
        grant = session.get(Grant, c.grant_id) if c.grant_id else None
        entries.append({
            "kind": "likeness", "likeness": c.likeness_id, "owner": c.owner_id, "grant": c.grant_id,
            "rule": c.decision.rule, "reason": c.decision.reason, "basis": _basis(c, gen.requester_id),
            "since": iso(grant.created_at) if grant is not None else None,
            "named": c.likeness_id in gen.likeness_ids, "found": c.likeness_id in found,
            "verification": c.verification, "status": c.status,
            "salt": new_salt().hex(),
        })
    return entries


def _basis(check: Any, requester_id: str) -> str:
    """Mirrors the order of :func:`policies.consent.likeness_permits`; ``earlier_claim``: a later, disputed
    claim on the face that deferred to the earlier claim's consent (:func:`policies.consent.seen_face_permits`)."""
    if getattr(check, "defers_to", None):
        return "earlier_claim"
    if check.owner_id == requester_id:
        return "own_likeness"
    if check.decision.rule == "likeness:everyone":
        return "open_to_everyone"
    if check.grant_id is not None:
        return "grant"
    return "mutual_contact"


def _sealed(gen: Generation) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    entries = gen.grants_relied or []
    if not entries or entries[0].get("kind") != "requester":
        return None
    return entries[0], [e for e in entries[1:] if e.get("kind") == "likeness"]


def _salt(entry: dict[str, Any]) -> bytes:
    return bytes.fromhex(entry["salt"])


def _public_entry(e: dict[str, Any]) -> dict[str, Any]:
    salt = _salt(e)
    return {
        "likeness": commit("likeness", e["likeness"], salt),
        "owner": commit("owner", e["owner"], salt),
        "grant": commit("grant", e["grant"], salt) if e["grant"] else None,
        "consented": True, "basis": e["basis"], "rule": e["rule"],
        "since": e["since"][:10] if e["since"] else None,  # the day: enough to show consent came first
        "named": e["named"], "found": e["found"],
        # how the face was claimed (live or photo; active, disputed or under review): no identity in it
        "verification": e.get("verification"), "status": e.get("status"),
    }


def public_assertion(gen: Generation) -> dict[str, Any]:
    """The identity part of the manifest's governance assertion: commitments and counts, no ids.

    ``{"commitments": "cg-commit-v1", "requester": hex, "prompt": hex, "people": n, "likenesses":
    [{"likeness", "owner", "grant" (hex or None), "consented", "basis", "rule", "since" (YYYY-MM-DD or None),
    "named", "found", "verification" (live|photo; None when sealed before issue #10), "status"}],
    "faces_found": [{"likeness": hex, "distance", "first_frame", "last_frame", "frames_matched", "track"}],
    "consent_checked_at": ISO 8601}``. Raises ``ValueError`` before :func:`seal`.
    """
    sealed = _sealed(gen)
    if sealed is None:
        raise ValueError(f"generation {gen.id} has no sealed consent record")
    head, people = sealed
    likeness_commitment = {e["likeness"]: commit("likeness", e["likeness"], _salt(e)) for e in people}
    return {
        "commitments": SCHEME,
        "requester": commit("requester", head["account"], _salt(head)),
        "prompt": commit("prompt", gen.prompt, _salt(head)),
        "people": len(people),
        "likenesses": [_public_entry(e) for e in people],
        "faces_found": [{**f, "likeness": likeness_commitment[f["likeness"]]} for f in gen.faces_found],
        "consent_checked_at": head["checked_at"],
    }


def public_decisions(decisions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The decisions a public record may show: the likeness decisions name likeness and grant ids in their
    reasons and are shown as ``likenesses`` (commitments) instead; the rest (characters, the default) stay."""
    return [dict(d) for d in decisions if not str(d.get("rule", "")).startswith("likeness:")]


def public_summary(gen: Generation) -> dict[str, Any]:
    """What the anonymous verification report says about consent: how many people, that each consented and
    when, as commitments (the report's ``log_entry`` is the proof the release was logged).

    ``{"commitments": "cg-commit-v1", "people": n, "each_consented": bool (consent held when it was
    released), "checked_at": ISO 8601 (seal), "held_at": ISO 8601 (release) or None, "requester": hex,
    "likenesses": [...]}`` as in :func:`public_assertion`; for a generation sealed before commitments
    existed, ``commitments`` is None and only ``people`` is given.
    """
    sealed = _sealed(gen)
    released = gen.state is GenerationState.RELEASED
    if sealed is None:
        return {"commitments": None, "people": len(gen.grants_relied or []), "each_consented": released,
                "held_at": iso(gen.released_at)}
    public = public_assertion(gen)
    return {"commitments": SCHEME, "people": public["people"], "each_consented": released,
            "checked_at": public["consent_checked_at"], "held_at": iso(gen.released_at),
            "requester": public["requester"], "likenesses": public["likenesses"]}


def open_record(session: Session, actor: Account, gen: Generation) -> dict[str, Any]:
    """The openings of ``gen``'s commitments that ``actor`` may see (module docstring): each
    ``{"scheme", "kind", "value", "salt", "commitment"}`` (:meth:`provenance.commitments.Opening.to_dict`),
    likeness entries with ``"entry"``, their index in the manifest's ``likenesses``.

    The caller checks first that ``actor`` may see ``gen`` at all. Raises :class:`Conflict` (409) before the
    seal and :class:`NotFound` when ``actor`` holds no opening. Audited (``generation:consent-record:open``).
    """
    sealed = _sealed(gen)
    if sealed is None:
        raise Conflict(f"generation {gen.id} is {gen.state.value} and has no sealed consent record "
                       "(only generations sealed with cg-commit-v1 commitments have one)", state=gen.state.value)
    head, people = sealed
    everything = actor.role in (Role.REGULATOR, Role.ADMIN)
    openings: list[dict[str, Any]] = []
    if everything or actor.id == head["account"]:
        for kind, value in (("requester", head["account"]), ("prompt", gen.prompt)):
            openings.append(Opening(kind, value, head["salt"]).to_dict())
    for i, e in enumerate(people):
        if everything or actor.id == e["owner"]:
            for kind in ("likeness", "owner", "grant"):
                if e[kind]:
                    openings.append({**Opening(kind, e[kind], e["salt"]).to_dict(), "entry": i})
    if not openings:
        raise NotFound(f"no generation {gen.id!r}")
    record(session, Tag.CONSENT_RECORD_OPEN, actor_id=actor.id, subject=gen.id, openings=len(openings),
           every_entry=everything)
    return {"generation_id": gen.id, "content_id": gen.content_id, "scheme": SCHEME, "people": len(people),
            "openings": openings}

"""HTTP API v1. Views parse, call one service, commit, serialize."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file

from governance import admission, metrics
from governance.api.common import (
    caller,
    db,
    guard,
    json_body,
    optional_caller,
    runtime,
    uploaded_blobs,
)
from governance.authz import Action
from governance.errors import Conflict, Gone, InvalidInput, RateLimited
from governance.models import (
    Account,
    Character,
    Generation,
    GenerationState,
    Likeness,
    Notification,
    iso,
    utcnow,
)
from governance.ratelimit import retry_after
from governance.remix import services as remix_svc
from governance.services import accounts as accounts_svc
from governance.services import characters as characters_svc
from governance.services import consent_record as consent_record_svc
from governance.services import generations as generations_svc
from governance.services import likenesses as likenesses_svc
from governance.services import notifications as notifications_svc
from governance.services import reviews as reviews_svc
from governance.services import translog
from governance.services import verification as verification_svc
from governance.uploads import media_kind, reference_images

bp = Blueprint("v1", __name__, url_prefix="/v1")


def _account_view(a: Account) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "role": a.role.value}


def _likeness_view(lk: Likeness, grants: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    from governance.api.enrollment_views import verification_fields

    out: dict[str, Any] = {"id": lk.id, "owner": lk.owner_id, "mode": lk.mode.value, "display_name": lk.display_name,
                           "backend": lk.backend, "embeddings": lk.embeddings, "created_at": iso(lk.created_at),
                           **verification_fields(lk)}
    if grants is not None:
        out["grants"] = grants
    return out


def _character_view(c: Character) -> dict[str, Any]:
    return {"id": c.id, "owner": c.owner_id, "name": c.name, "aliases": c.aliases, "rule": c.rule.value,
            "licensees": c.licensees, "attribution": c.attribution, "created_at": iso(c.created_at)}


def _notification_view(n: Notification) -> dict[str, Any]:
    return {"id": n.id, "kind": n.kind, "message": n.message, "generation": n.generation_id,
            "created_at": iso(n.created_at), "read": n.read_at is not None}


# -- accounts and contacts ------------------------------------------------------------------------------------
@bp.get("/me")
@guard(Action.ME_READ)
def me() -> Response:
    return jsonify(_account_view(caller()))


@bp.post("/me/token")
@guard(Action.ME_TOKEN)
def rotate_my_token() -> Response:
    """A new API token for the caller; the one used for this request stops working at once."""
    me_ = caller()
    token = accounts_svc.rotate_token(db(), me_, actor=me_)
    db().commit()
    return _secret(jsonify({**_account_view(me_), "token": token}))


@bp.post("/accounts")
@guard(Action.ACCOUNT_CREATE)
def create_account() -> tuple[Response, int]:
    admin = caller()
    body = json_body("name", "role", "daily_quota")
    account, token = accounts_svc.create_account(db(), body.get("name"), body.get("role"), actor=admin,
                                                 daily_quota=body.get("daily_quota"))
    db().commit()
    return _secret(jsonify({**_account_view(account), "daily_quota": account.daily_quota, "token": token})), 201


@bp.get("/accounts")
@guard(Action.ACCOUNT_LIST)
def list_accounts() -> Response:
    return jsonify({"accounts": [{**_account_view(a), "daily_quota": a.daily_quota, "created_at": iso(a.created_at)}
                                 for a in accounts_svc.list_accounts(db())]})


@bp.post("/accounts/<ref>/token")
@guard(Action.ACCOUNT_TOKEN)
def rotate_token(ref: str) -> Response:
    """An admin revokes an account's token (a leaked token stops working at once). No new token is returned:
    an admin holding one could act, and consent, as the person; the operator issues it instead."""
    admin = caller()
    account = accounts_svc.resolve_account(db(), ref)
    accounts_svc.revoke_token(db(), account, actor=admin)
    db().commit()
    return _secret(jsonify({**_account_view(account), "token": None, "token_revoked": True}))


def _secret(response: Response) -> Response:
    """A response carrying a token: no cache may keep it."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/contacts")
@guard(Action.CONTACT_LIST)
def contacts() -> Response:
    """The names you listed that belong to an account, each with whether they list you too; no ids, no roles."""
    return jsonify({"contacts": [{"name": a.name, "mutual": m} for a, m in accounts_svc.list_contacts(db(), caller())]})


@bp.put("/contacts/<ref>")
@guard(Action.CONTACT_ADD)
def add_contact(ref: str) -> tuple[str, int]:
    """List an account by its name. The answer is the same whether the name exists or not."""
    accounts_svc.add_contact(db(), caller(), ref)
    db().commit()
    return "", 204


@bp.delete("/contacts/<ref>")
@guard(Action.CONTACT_REMOVE)
def remove_contact(ref: str) -> tuple[str, int]:
    accounts_svc.remove_contact(db(), caller(), ref)
    db().commit()
    return "", 204


# -- likenesses ----------------------------------------------------------------------------------------------
@bp.post("/likenesses")
@guard(Action.LIKENESS_ENROLL)
def enroll() -> tuple[Response, int]:
    """Photos (a protective likeness), or a selfie video with ``challenge`` (a live one): see
    :mod:`governance.api.enrollment_views`."""
    from governance.api.enrollment_views import enroll_likeness

    return enroll_likeness()


@bp.get("/likenesses")
@guard(Action.LIKENESS_LIST)
def my_likenesses() -> Response:
    from sqlmodel import select

    owner = caller()
    rows = db().exec(select(Likeness).where(Likeness.owner_id == owner.id)).all()
    return jsonify({"likenesses": [_likeness_view(lk) for lk in rows]})


@bp.get("/likenesses/<likeness_id>")
@guard(Action.LIKENESS_READ)
def get_likeness(likeness_id: str) -> Response:
    lk = likenesses_svc.owned_likeness(db(), caller(), likeness_id, Action.LIKENESS_READ)
    grants = [{"account": g.grantee_id, "grant": g.id, "since": iso(g.created_at)}
              for g in likenesses_svc.active_grants(db(), lk.id)]
    return jsonify(_likeness_view(lk, grants))


@bp.patch("/likenesses/<likeness_id>")
@guard(Action.LIKENESS_MODE)
def patch_likeness(likeness_id: str) -> Response:
    actor = caller()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id, Action.LIKENESS_MODE)
    body = json_body("mode")
    if "mode" not in body:
        raise InvalidInput("only {'mode': 'only_me'|'approved'|'mutuals'|'everyone'} can be changed")
    likenesses_svc.set_mode(db(), actor, lk, body["mode"])
    db().commit()
    remix_svc.sweep_withdrawn_files(db(), runtime().settings.videos_dir)  # remixes the withdrawal took down
    return jsonify(_likeness_view(lk))


@bp.delete("/likenesses/<likeness_id>")
@guard(Action.LIKENESS_DELETE)
def delete_likeness(likeness_id: str) -> tuple[str, int]:
    actor = caller()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id, Action.LIKENESS_DELETE)
    likenesses_svc.delete_likeness(db(), actor, lk)
    db().commit()
    remix_svc.sweep_withdrawn_files(db(), runtime().settings.videos_dir)  # remixes the withdrawal took down
    runtime().sync_index(db())
    return "", 204


@bp.put("/likenesses/<likeness_id>/grants/<account_ref>")
@guard(Action.LIKENESS_GRANT)
def grant(likeness_id: str, account_ref: str) -> tuple[Response, int]:
    actor = caller()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id, Action.LIKENESS_GRANT)
    g, created = likenesses_svc.grant(db(), actor, lk, account_ref)
    db().commit()
    return jsonify({"likeness": lk.id, "account": g.grantee_id, "grant": g.id}), (201 if created else 200)


@bp.delete("/likenesses/<likeness_id>/grants/<account_ref>")
@guard(Action.LIKENESS_REVOKE)
def revoke(likeness_id: str, account_ref: str) -> tuple[str, int]:
    actor = caller()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id, Action.LIKENESS_REVOKE)
    likenesses_svc.revoke(db(), actor, lk, account_ref)
    db().commit()
    remix_svc.sweep_withdrawn_files(db(), runtime().settings.videos_dir)  # remixes the withdrawal took down
    return "", 204


@bp.get("/likenesses/<likeness_id>/generations")
@guard(Action.LIKENESS_GENERATIONS)
def likeness_generations(likeness_id: str) -> Response:
    lk = likenesses_svc.owned_likeness(db(), caller(), likeness_id, Action.LIKENESS_GENERATIONS)
    gens = generations_svc.uses_shown_to_owner(db(), lk)
    return jsonify({"generations": [generations_svc.view_for(db(), caller(), g) for g in gens]})


# -- characters ------------------------------------------------------------------------------------------
@bp.post("/characters")
@guard(Action.CHARACTER_CREATE)
def create_character() -> tuple[Response, int]:
    owner = caller()
    body = json_body("name", "aliases", "rule", "licensees", "attribution")
    ch = characters_svc.create_character(db(), owner, body.get("name"), body.get("aliases"), body.get("rule"),
                                         body.get("licensees"), body.get("attribution"))
    db().commit()
    return jsonify(_character_view(ch)), 201


@bp.get("/characters")
@guard(Action.CHARACTER_LIST)
def list_characters() -> Response:
    return jsonify({"characters": [_character_view(c) for c in characters_svc.list_characters(db())]})


@bp.post("/characters/<character_id>/references")
@guard(Action.CHARACTER_REFERENCES)
def add_character_references(character_id: str) -> tuple[Response, int]:
    """Reference images (multipart ``media``, photos or stills) the visual check compares outputs with."""
    actor = caller()
    ch = characters_svc.owned_character(db(), actor, character_id, Action.CHARACTER_REFERENCES)
    with admission.expensive(runtime(), "reference") as meter:
        images = reference_images(uploaded_blobs(), meter)
        total = characters_svc.add_references(db(), actor, ch, images, runtime().character_encoder)
    db().commit()
    return jsonify({"character": ch.id, "references": total}), 201


@bp.post("/characters/simulate")
@guard(Action.CHARACTER_SIMULATE)
def simulate_character() -> Response:
    """What a rule would have done to past requests, before it is registered: k-anonymous counts only
    (characters_svc.simulate); rate-limited per account, since each call is a guess about other people."""
    owner = caller()
    wait = runtime().simulate_limiter.acquire(f"account:{owner.id}")
    if wait:
        raise RateLimited(f"at most {runtime().settings.simulate_per_minute} simulations a minute per account; "
                          f"retry in {retry_after(wait)} s", retry_after=retry_after(wait))
    body = json_body("name", "aliases", "rule", "licensees", "last", "attribution")
    return jsonify(characters_svc.simulate(db(), owner, body.get("name"), body.get("aliases"), body.get("rule"),
                                           body.get("licensees"), body.get("last"), body.get("attribution")))


@bp.get("/characters/<character_id>/usage")
@guard(Action.CHARACTER_USAGE)
def character_usage(character_id: str) -> Response:
    actor = caller()
    return jsonify(characters_svc.usage(db(), actor, characters_svc.owned_character(
        db(), actor, character_id, Action.CHARACTER_USAGE)))


@bp.delete("/characters/<character_id>")
@guard(Action.CHARACTER_DELETE)
def delete_character(character_id: str) -> tuple[str, int]:
    actor = caller()
    characters_svc.delete_character(db(), actor, characters_svc.owned_character(
        db(), actor, character_id, Action.CHARACTER_DELETE))
    db().commit()
    return "", 204


# -- generations -----------------------------------------------------------------------------------------
@bp.post("/generations")
@guard(Action.GENERATION_CREATE)
def create_generation() -> tuple[Response, int]:
    requester = caller()
    body = json_body("prompt", "likenesses", "seed", "remix_of")
    rt = runtime()
    rt.require_free_space()  # 507 rather than a job that fails on a full disk
    gen = generations_svc.request_generation(db(), requester, body.get("prompt"), body.get("likenesses"),
                                             body.get("seed"), default_quota=rt.settings.daily_quota,
                                             remix_of=body.get("remix_of"))
    db().commit()
    metrics.decisions(gen.decisions)
    if gen.state is GenerationState.PRECHECKED:
        rt.pipeline.submit(gen.id)
    else:
        metrics.finished(gen.state.value, "precheck", None)
    resp = jsonify({"id": gen.id, "state": gen.state.value, "reasons": gen.reasons})
    resp.headers["Location"] = f"/v1/generations/{gen.id}"
    return resp, 202


@bp.get("/generations")
@guard(Action.GENERATION_LIST)
def list_generations() -> Response:
    requester = caller()
    return jsonify({"generations": [generations_svc.view_for(db(), requester, g)
                                    for g in generations_svc.list_for_requester(db(), requester)]})


@bp.get("/generations/<generation_id>")
@guard(Action.GENERATION_READ)
def get_generation(generation_id: str) -> Response:
    gen = generations_svc.generation_for(db(), caller(), generation_id, Action.GENERATION_READ)
    return jsonify(generations_svc.view_for(db(), caller(), gen))


@bp.get("/generations/<generation_id>/review")
@guard(Action.GENERATION_REVIEWS)
def generation_reviews(generation_id: str) -> Response:
    """The questions about a held generation put to the caller (the owner of a likeness it may show), with
    the frames the face is in (base64 JPEG); nobody else's."""
    account = caller()
    gen = generations_svc.generation_for(db(), account, generation_id, Action.GENERATION_REVIEWS)
    rows = reviews_svc.for_account(db(), account, gen)
    return jsonify({"generation": gen.id, "state": gen.state.value,
                    "reviews": [reviews_svc.view(r, with_frames=True) for r in rows]})


@bp.post("/generations/<generation_id>/review")
@guard(Action.GENERATION_REVIEW)
def review_generation(generation_id: str) -> Response:
    """``{"decision": "confirm"}`` (it is me: blocked) or ``{"decision": "dismiss"}`` (not me: the gate goes on,
    consent checked again at every stage)."""
    account = caller()
    gen = generations_svc.generation_for(db(), account, generation_id, Action.GENERATION_REVIEW)
    body = json_body("decision")
    again = reviews_svc.decide(db(), account, gen, body.get("decision"))
    db().commit()
    if again:
        runtime().pipeline.submit(gen.id)
    rows = reviews_svc.for_account(db(), account, gen)
    return jsonify({"generation": gen.id, "state": gen.state.value,
                    "reviews": [reviews_svc.view(r, with_frames=False) for r in rows]})


@bp.get("/generations/<generation_id>/consent-record")
@guard(Action.GENERATION_CONSENT_RECORD)
def consent_record(generation_id: str) -> Response:
    """The openings of a sealed generation's public commitments: all of them for regulators and admins, their
    own to the requester and to owners of a likeness in it (404 to anyone who may not see the generation)."""
    actor = caller()
    gen = generations_svc.generation_for(db(), actor, generation_id, Action.GENERATION_CONSENT_RECORD)
    body = consent_record_svc.open_record(db(), actor, gen)
    db().commit()  # the audit event of the opening
    resp = jsonify(body)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/generations/<generation_id>/video")
@guard(Action.GENERATION_VIDEO)
def download(generation_id: str) -> Response:
    gen = generations_svc.generation_for(db(), caller(), generation_id, Action.GENERATION_VIDEO)
    _ensure_downloadable(gen)
    path = (runtime().settings.videos_dir / f"{gen.id}.mp4").resolve()
    if not path.is_file():
        raise Gone(f"the video of generation {gen.id} is no longer stored")
    return send_file(path, mimetype="video/mp4", as_attachment=True, download_name=f"{gen.id}.mp4",
                     etag=gen.video_sha256 or True)


def _ensure_downloadable(gen: Generation) -> None:
    if gen.taken_down_at is not None:
        raise Gone(f"generation {gen.id} was taken down")
    if gen.state is not GenerationState.RELEASED:
        raise Conflict(f"generation {gen.id} is {gen.state.value}; only released videos can be downloaded",
                       state=gen.state.value, reasons=gen.reasons)


@bp.delete("/generations/<generation_id>")
@guard(Action.GENERATION_TAKEDOWN)
def take_down(generation_id: str) -> tuple[str, int]:
    """Take a video down. An admin who is not in it and did not request it must say why (JSON
    ``{"reason": ...}`` or ``?reason=``): the reason is audited and sent to everyone involved."""
    actor = caller()
    gen = generations_svc.generation_for(db(), actor, generation_id, Action.GENERATION_TAKEDOWN)
    body = json_body("reason") if request.get_data(cache=True) else {}
    generations_svc.take_down(db(), actor, gen, body.get("reason", request.args.get("reason")))
    db().commit()
    (runtime().settings.videos_dir / f"{gen.id}.mp4").unlink(missing_ok=True)
    remix_svc.sweep_withdrawn_files(db(), runtime().settings.videos_dir)  # remixes the withdrawal took down
    return "", 204


# -- verification and notifications ------------------------------------------------------------------------
@bp.post("/verify")
@guard(Action.VERIFY)
def verify() -> Response:
    account = optional_caller()  # anyone may verify; a token, if sent, must be valid (guard checked it)
    client = f"account:{account.id}" if account else f"addr:{request.remote_addr}"
    wait = runtime().verify_limiter.acquire(client)
    if wait:
        raise RateLimited(f"at most {runtime().settings.verify_per_minute} verifications a minute per client; "
                          f"retry in {retry_after(wait)} s", retry_after=retry_after(wait))
    with admission.expensive(runtime(), "verify", client) as meter:
        blobs = uploaded_blobs()
        if len(blobs) != 1:
            raise InvalidInput("send exactly one file in the multipart field 'media'")
        media_kind(blobs[0])
        return jsonify(verification_svc.verify_bytes(blobs[0], runtime(), db(), meter=meter))


# -- the transparency log (public: anyone may audit it) -------------------------------------------------------
@bp.get("/log")
@guard(Action.LOG_HEAD)
def log_head() -> Response:
    """The signed tree head: size, Merkle root, time, and the signature under the C2PA signer's chain."""
    return jsonify(runtime().signed_log_head(db()).to_dict())


@bp.get("/log/entries/<int:index>")
@guard(Action.LOG_ENTRY)
def log_entry(index: int) -> Response:
    """The entry, its leaf hash and its inclusion proof in the tree of ``tree_size`` entries (default: all)."""
    return jsonify(translog.inclusion(db(), index, _int_arg("tree_size")))


@bp.get("/log/consistency")
@guard(Action.LOG_CONSISTENCY)
def log_consistency() -> Response:
    """The proof that the first ``old_size`` entries are a prefix of the tree of ``tree_size`` (default: all)."""
    old_size = _int_arg("old_size")
    if old_size is None:
        raise InvalidInput("send old_size: the tree size you saw before")
    return jsonify(translog.consistency(db(), old_size, _int_arg("tree_size")))


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 15:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


@bp.get("/notifications")
@guard(Action.NOTIFICATION_LIST)
def notifications() -> Response:
    account = caller()
    unread = request.args.get("unread") in ("1", "true")
    items = notifications_svc.list_for(db(), account.id, unread_only=unread)
    return jsonify({"notifications": [_notification_view(n) for n in items]})


@bp.post("/notifications/read")
@guard(Action.NOTIFICATION_READ)
def mark_read() -> tuple[str, int]:
    account = caller()
    for n in notifications_svc.list_for(db(), account.id, unread_only=True, limit=10_000):
        n.read_at = utcnow()
        db().add(n)
    db().commit()
    return "", 204


# -- enrollment, disputes and protected figures: their own module, nested here so every route is v1.* ---------
def _nest_enrollment() -> None:
    from governance.api import enrollment_views

    bp.register_blueprint(enrollment_views.bp)


_nest_enrollment()

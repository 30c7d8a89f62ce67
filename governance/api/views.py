"""HTTP API v1. Views parse, call one service, commit, serialize."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, send_file

from governance.api.common import (
    current_account,
    db,
    json_body,
    optional_account,
    runtime,
    uploaded_blobs,
)
from governance.errors import Conflict, Gone, InvalidInput, RateLimited
from governance.models import (
    Account,
    Character,
    Generation,
    GenerationState,
    Likeness,
    Notification,
    Role,
    iso,
    utcnow,
)
from governance.ratelimit import retry_after
from governance.services import accounts as accounts_svc
from governance.services import characters as characters_svc
from governance.services import generations as generations_svc
from governance.services import likenesses as likenesses_svc
from governance.services import notifications as notifications_svc
from governance.services import translog
from governance.services import verification as verification_svc
from governance.uploads import decode_image, media_kind

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
def me() -> Response:
    return jsonify(_account_view(current_account()))


@bp.post("/me/token")
def rotate_my_token() -> Response:
    """A new API token for the caller; the one used for this request stops working at once."""
    me_ = current_account()
    token = accounts_svc.rotate_token(db(), me_, actor=me_)
    db().commit()
    return _secret(jsonify({**_account_view(me_), "token": token}))


@bp.post("/accounts")
def create_account() -> tuple[Response, int]:
    admin = current_account(Role.ADMIN)
    body = json_body("name", "role", "daily_quota")
    account, token = accounts_svc.create_account(db(), body.get("name"), body.get("role"), actor=admin,
                                                 daily_quota=body.get("daily_quota"))
    db().commit()
    return _secret(jsonify({**_account_view(account), "daily_quota": account.daily_quota, "token": token})), 201


@bp.get("/accounts")
def list_accounts() -> Response:
    current_account(Role.ADMIN)
    return jsonify({"accounts": [{**_account_view(a), "daily_quota": a.daily_quota, "created_at": iso(a.created_at)}
                                 for a in accounts_svc.list_accounts(db())]})


@bp.post("/accounts/<ref>/token")
def rotate_token(ref: str) -> Response:
    """An admin replaces an account's token (a leaked token stops working at once)."""
    admin = current_account(Role.ADMIN)
    account = accounts_svc.resolve_account(db(), ref)
    token = accounts_svc.rotate_token(db(), account, actor=admin)
    db().commit()
    return _secret(jsonify({**_account_view(account), "token": token}))


def _secret(response: Response) -> Response:
    """A response carrying a token: no cache may keep it."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/contacts")
def contacts() -> Response:
    me_ = current_account()
    return jsonify({"contacts": [{**_account_view(a), "mutual": m} for a, m in accounts_svc.list_contacts(db(), me_)]})


@bp.put("/contacts/<ref>")
def add_contact(ref: str) -> Response:
    me_ = current_account()
    other = accounts_svc.add_contact(db(), me_, ref)
    mutual = accounts_svc.is_mutual(db(), me_.id, other.id)
    db().commit()
    return jsonify({**_account_view(other), "mutual": mutual})


@bp.delete("/contacts/<ref>")
def remove_contact(ref: str) -> tuple[str, int]:
    accounts_svc.remove_contact(db(), current_account(), ref)
    db().commit()
    return "", 204


# -- likenesses ----------------------------------------------------------------------------------------------
@bp.post("/likenesses")
def enroll() -> tuple[Response, int]:
    """Photos (a protective likeness), or a selfie video with ``challenge`` (a live one): see
    :mod:`governance.api.enrollment_views`."""
    from governance.api.enrollment_views import enroll_likeness

    return enroll_likeness()


@bp.get("/likenesses")
def my_likenesses() -> Response:
    from sqlmodel import select

    owner = current_account()
    rows = db().exec(select(Likeness).where(Likeness.owner_id == owner.id)).all()
    return jsonify({"likenesses": [_likeness_view(lk) for lk in rows]})


@bp.get("/likenesses/<likeness_id>")
def get_likeness(likeness_id: str) -> Response:
    actor = current_account()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id)
    grants = [{"account": g.grantee_id, "grant": g.id, "since": iso(g.created_at)}
              for g in likenesses_svc.active_grants(db(), lk.id)]
    return jsonify(_likeness_view(lk, grants))


@bp.patch("/likenesses/<likeness_id>")
def patch_likeness(likeness_id: str) -> Response:
    actor = current_account()
    body = json_body("mode")
    if "mode" not in body:
        raise InvalidInput("only {'mode': 'only_me'|'approved'|'mutuals'|'everyone'} can be changed")
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id)
    likenesses_svc.set_mode(db(), actor, lk, body["mode"])
    db().commit()
    return jsonify(_likeness_view(lk))


@bp.delete("/likenesses/<likeness_id>")
def delete_likeness(likeness_id: str) -> tuple[str, int]:
    actor = current_account()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id)
    likenesses_svc.delete_likeness(db(), actor, lk)
    db().commit()
    runtime().sync_index(db())
    return "", 204


@bp.put("/likenesses/<likeness_id>/grants/<account_ref>")
def grant(likeness_id: str, account_ref: str) -> tuple[Response, int]:
    actor = current_account()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id)
    g, created = likenesses_svc.grant(db(), actor, lk, account_ref)
    db().commit()
    return jsonify({"likeness": lk.id, "account": g.grantee_id, "grant": g.id}), (201 if created else 200)


@bp.delete("/likenesses/<likeness_id>/grants/<account_ref>")
def revoke(likeness_id: str, account_ref: str) -> tuple[str, int]:
    actor = current_account()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id)
    likenesses_svc.revoke(db(), actor, lk, account_ref)
    db().commit()
    return "", 204


@bp.get("/likenesses/<likeness_id>/generations")
def likeness_generations(likeness_id: str) -> Response:
    actor = current_account()
    lk = likenesses_svc.owned_likeness(db(), actor, likeness_id)
    gens = generations_svc.uses_shown_to_owner(db(), lk)
    return jsonify({"generations": [generations_svc.public_view(g) for g in gens]})


# -- characters ------------------------------------------------------------------------------------------
@bp.post("/characters")
def create_character() -> tuple[Response, int]:
    owner = current_account(Role.RIGHTS_HOLDER)
    body = json_body("name", "aliases", "rule", "licensees", "attribution")
    ch = characters_svc.create_character(db(), owner, body.get("name"), body.get("aliases"), body.get("rule"),
                                         body.get("licensees"), body.get("attribution"))
    db().commit()
    return jsonify(_character_view(ch)), 201


@bp.get("/characters")
def list_characters() -> Response:
    current_account()
    return jsonify({"characters": [_character_view(c) for c in characters_svc.list_characters(db())]})


@bp.post("/characters/<character_id>/references")
def add_character_references(character_id: str) -> tuple[Response, int]:
    """Reference images (multipart ``media``, photos or stills) the visual check compares outputs with."""
    actor = current_account(Role.RIGHTS_HOLDER)
    ch = characters_svc.get_character(db(), character_id)
    blobs = uploaded_blobs()
    if len(blobs) > 8:
        raise InvalidInput("send at most 8 reference images at a time")
    images = []
    for blob in blobs:
        if media_kind(blob) != "image":
            raise InvalidInput("reference images must be photos or stills (JPEG, PNG, WebP), not videos")
        images.append(decode_image(blob))
    total = characters_svc.add_references(db(), actor, ch, images, runtime().character_encoder)
    db().commit()
    return jsonify({"character": ch.id, "references": total}), 201


@bp.post("/characters/simulate")
def simulate_character() -> Response:
    """What a rule would have done to past requests, before it is registered (counts only)."""
    owner = current_account(Role.RIGHTS_HOLDER)
    body = json_body("name", "aliases", "rule", "licensees", "last", "attribution")
    return jsonify(characters_svc.simulate(db(), owner, body.get("name"), body.get("aliases"), body.get("rule"),
                                           body.get("licensees"), body.get("last"), body.get("attribution")))


@bp.get("/characters/<character_id>/usage")
def character_usage(character_id: str) -> Response:
    actor = current_account(Role.RIGHTS_HOLDER)
    return jsonify(characters_svc.usage(db(), actor, characters_svc.get_character(db(), character_id)))


@bp.delete("/characters/<character_id>")
def delete_character(character_id: str) -> tuple[str, int]:
    actor = current_account(Role.RIGHTS_HOLDER)
    characters_svc.delete_character(db(), actor, characters_svc.get_character(db(), character_id))
    db().commit()
    return "", 204


# -- generations -----------------------------------------------------------------------------------------
@bp.post("/generations")
def create_generation() -> tuple[Response, int]:
    requester = current_account(Role.CREATOR)
    body = json_body("prompt", "likenesses", "seed")
    rt = runtime()
    gen = generations_svc.request_generation(db(), requester, body.get("prompt"), body.get("likenesses"),
                                             body.get("seed"), default_quota=rt.settings.daily_quota)
    db().commit()
    if gen.state is GenerationState.PRECHECKED:
        rt.pipeline.submit(gen.id)
    resp = jsonify({"id": gen.id, "state": gen.state.value, "reasons": gen.reasons})
    resp.headers["Location"] = f"/v1/generations/{gen.id}"
    return resp, 202


@bp.get("/generations")
def list_generations() -> Response:
    requester = current_account()
    return jsonify({"generations": [generations_svc.public_view(g)
                                    for g in generations_svc.list_for_requester(db(), requester)]})


@bp.get("/generations/<generation_id>")
def get_generation(generation_id: str) -> Response:
    gen = generations_svc.visible_generation(db(), current_account(), generation_id)
    return jsonify(generations_svc.public_view(gen))


@bp.get("/generations/<generation_id>/video")
def download(generation_id: str) -> Response:
    gen = generations_svc.visible_generation(db(), current_account(), generation_id)
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
def take_down(generation_id: str) -> tuple[str, int]:
    actor = current_account()
    gen = generations_svc.visible_generation(db(), actor, generation_id)
    generations_svc.take_down(db(), actor, gen)
    db().commit()
    (runtime().settings.videos_dir / f"{gen.id}.mp4").unlink(missing_ok=True)
    return "", 204


# -- verification and notifications ------------------------------------------------------------------------
@bp.post("/verify")
def verify() -> Response:
    account = optional_account()  # anyone may verify; a token, if sent, must be valid
    client = f"account:{account.id}" if account else f"addr:{request.remote_addr}"
    wait = runtime().verify_limiter.acquire(client)
    if wait:
        raise RateLimited(f"at most {runtime().settings.verify_per_minute} verifications a minute per client; "
                          f"retry in {retry_after(wait)} s", retry_after=retry_after(wait))
    blobs = uploaded_blobs()
    if len(blobs) != 1:
        raise InvalidInput("send exactly one file in the multipart field 'media'")
    media_kind(blobs[0])
    return jsonify(verification_svc.verify_bytes(blobs[0], runtime(), db()))


# -- the transparency log (public: anyone may audit it) -------------------------------------------------------
@bp.get("/log")
def log_head() -> Response:
    """The signed tree head: size, Merkle root, time, and the signature under the C2PA signer's chain."""
    return jsonify(runtime().signed_log_head(db()).to_dict())


@bp.get("/log/entries/<int:index>")
def log_entry(index: int) -> Response:
    """The entry, its leaf hash and its inclusion proof in the tree of ``tree_size`` entries (default: all)."""
    return jsonify(translog.inclusion(db(), index, _int_arg("tree_size")))


@bp.get("/log/consistency")
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
def notifications() -> Response:
    account = current_account()
    unread = request.args.get("unread") in ("1", "true")
    items = notifications_svc.list_for(db(), account.id, unread_only=unread)
    return jsonify({"notifications": [_notification_view(n) for n in items]})


@bp.post("/notifications/read")
def mark_read() -> tuple[str, int]:
    account = current_account()
    for n in notifications_svc.list_for(db(), account.id, unread_only=True, limit=10_000):
        n.read_at = utcnow()
        db().add(n)
    db().commit()
    return "", 204

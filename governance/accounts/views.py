"""HTTP API v1, accounts: the caller (``/me``), accounts (admins), contacts and notifications. Views parse, call
one service, commit, serialize."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from governance import authz
from governance.accounts import schemas as s
from governance.accounts import services as accounts_svc
from governance.accounts.models import Account, Notification
from governance.authz import Action
from governance.columns import iso
from governance.errors import BadRequest
from governance.generations.services import generations as generations_svc
from governance.openapi import NO_STORE, PageQuery, operation
from governance.web import caller, db, guard, json_body, page_request, page_response, runtime

bp = Blueprint("accounts", __name__)  # nested in the v1 blueprint (governance.app): /v1/...


def account_view(a: Account) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "role": a.role.value}


def _notification_view(n: Notification) -> dict[str, Any]:
    return {"id": n.id, "kind": n.kind, "message": n.message, "generation": n.generation_id,
            "created_at": iso(n.created_at), "read": n.read_at is not None}


def _secret(response: Response) -> Response:
    """A response carrying a token: no cache may keep it."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/me")
@guard(Action.ME_READ)
@operation(ok={200: s.MeOut}, tags=["accounts"])
def me() -> Response:
    """Who you are; for an account that may request generations, its daily ``quota``: ``daily``, ``used`` today,
    ``refused`` (requests the precheck refused today: they use none of it, but at most ``daily`` of them are
    accepted a day), ``left`` (the requests you may still send today before a 429: the smaller of ``daily - used``
    and ``daily - refused``) and ``resets_at`` (the next midnight UTC)."""
    me_ = caller()
    out: dict[str, Any] = account_view(me_)
    if authz.allows(Action.GENERATION_CREATE, authz.principal(me_), owner=True):
        q = generations_svc.quota_for(db(), me_, default_quota=runtime().settings.daily_quota)
        out["quota"] = {"daily": q.daily, "used": q.used, "left": q.left, "refused": q.refused,
                        "resets_at": iso(q.resets_at)}
    return jsonify(out)


@bp.post("/me/token")
@guard(Action.ME_TOKEN)
@operation(ok={200: s.TokenOut}, tags=["accounts"], headers={200: NO_STORE})
def rotate_my_token() -> Response:
    """A new API token for the caller; the one used for this request stops working at once."""
    me_ = caller()
    token = accounts_svc.rotate_token(db(), me_, actor=me_)
    db().commit()
    return _secret(jsonify({**account_view(me_), "token": token}))


@bp.post("/accounts")
@guard(Action.ACCOUNT_CREATE)
@operation(ok={201: s.AccountCreated}, json=s.AccountCreate, errors=[404, 409], tags=["accounts"],
           headers={201: NO_STORE})
def create_account() -> tuple[Response, int]:
    admin = caller()
    body = json_body("name", "role", "daily_quota", "guardian")
    extra: dict[str, Any] = {}
    if body.get("guardian") is not None:  # a minor's account, linked to its guardian's from the start
        from governance.guardians import services as guardians_svc

        account, token, row = guardians_svc.create_minor_account(db(), admin, body.get("name"), body.get("role"),
                                                                 body.get("guardian"),
                                                                 daily_quota=body.get("daily_quota"))
        extra = guardians_svc.guardianship_view(row, db())
    else:
        account, token = accounts_svc.create_account(db(), body.get("name"), body.get("role"), actor=admin,
                                                     daily_quota=body.get("daily_quota"))
    db().commit()
    return _secret(jsonify({**account_view(account), "daily_quota": account.daily_quota, **extra,
                            "token": token})), 201


@bp.get("/accounts")
@guard(Action.ACCOUNT_LIST)
@operation(ok={200: s.AccountPage}, query=PageQuery, tags=["accounts"])
def list_accounts() -> Response:
    """By name, paged (``limit``, ``cursor``; ``next``)."""
    page = accounts_svc.page_accounts(db(), page_request("accounts"))
    return page_response("accounts", page, lambda a: {**account_view(a), "daily_quota": a.daily_quota,
                                                      "created_at": iso(a.created_at)})


@bp.post("/accounts/<ref>/token")
@guard(Action.ACCOUNT_TOKEN)
@operation(ok={200: s.TokenRevoked}, tags=["accounts"], headers={200: NO_STORE})
def rotate_token(ref: str) -> Response:
    """An admin revokes an account's token (a leaked token stops working at once). No new token is returned:
    an admin holding one could act, and consent, as the person; the operator issues it instead."""
    admin = caller()
    account = accounts_svc.resolve_account(db(), ref)
    accounts_svc.revoke_token(db(), account, actor=admin)
    db().commit()
    return _secret(jsonify({**account_view(account), "token": None, "token_revoked": True}))


@bp.get("/contacts")
@guard(Action.CONTACT_LIST)
@operation(ok={200: s.ContactPage}, query=PageQuery, tags=["contacts"])
def contacts() -> Response:
    """The names you listed that belong to an account, each with whether they list you too; no ids, no roles."""
    me_ = caller()
    page = accounts_svc.page_contacts(db(), me_, page_request(f"contacts:{me_.id}"))
    return page_response("contacts", page, lambda am: {"name": am[0].name, "mutual": am[1]})


@bp.put("/contacts/<ref>")
@guard(Action.CONTACT_ADD)
@operation(ok={204: None}, errors=[422], tags=["contacts"])
def add_contact(ref: str) -> tuple[str, int]:
    """List an account by its name. The answer is the same whether the name exists or not."""
    accounts_svc.add_contact(db(), caller(), ref)
    db().commit()
    return "", 204


@bp.delete("/contacts/<ref>")
@guard(Action.CONTACT_REMOVE)
@operation(ok={204: None}, tags=["contacts"])
def remove_contact(ref: str) -> tuple[str, int]:
    accounts_svc.remove_contact(db(), caller(), ref)
    db().commit()
    return "", 204


@bp.get("/notifications")
@guard(Action.NOTIFICATION_LIST)
@operation(ok={200: s.NotificationPage}, query=s.NotificationQuery, tags=["notifications"])
def notifications() -> Response:
    """``?unread=true``: only the unread ones (``true``/``1``, ``false``/``0``; anything else is a 400). Newest
    first, paged (``limit``, ``cursor``; ``next``)."""
    raw = request.args.get("unread", "false")
    if raw not in ("1", "true", "0", "false"):
        raise BadRequest(f"unread must be true or false, got {raw!r}")
    unread = raw in ("1", "true")
    me_ = caller()
    page = accounts_svc.page_notifications(db(), me_.id, page_request(f"notifications:{me_.id}"), unread_only=unread)
    return page_response("notifications", page, _notification_view)


@bp.post("/notifications/read")
@guard(Action.NOTIFICATION_READ)
@operation(ok={204: None}, tags=["notifications"])
def mark_read() -> tuple[str, int]:
    accounts_svc.mark_read(db(), caller())
    db().commit()
    return "", 204

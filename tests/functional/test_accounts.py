"""Accounts over HTTP: a leaked token can be replaced (by its holder or an admin) and stops working at once;
admins create and list accounts; everyone else is refused, and bad input is named."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from governance.accounts.models import Account
from governance.accounts.services import rotate_token
from governance.cli import main
from governance.db import unit_of_work
from governance.models import AuditEvent


def _problem(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.get_json())
    assert r.mimetype == "application/problem+json"
    return r.get_json()


def test_rotating_my_token_retires_the_old_one_at_once(api):
    old = api.account("alice")
    r = api.call("POST", "/v1/me/token", old)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    new = body["token"]
    assert new.startswith("cg_") and new != old and body["name"] == "alice"
    assert "not valid" in _problem(api.call("GET", "/v1/me", old), 401)["detail"]
    assert api.call("GET", "/v1/me", new).get_json()["name"] == "alice"
    _problem(api.call("POST", "/v1/me/token"), 401)  # no token, no rotation


def test_admins_create_list_and_rotate_accounts(api):
    admin = api.account("root", "admin")
    r = api.call("POST", "/v1/accounts", admin, json={"name": "ruth", "role": "regulator", "daily_quota": 5})
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
    ruth = r.get_json()
    assert ruth["role"] == "regulator" and ruth["daily_quota"] == 5
    assert api.call("GET", "/v1/me", ruth["token"]).get_json()["id"] == ruth["id"]

    listed = api.call("GET", "/v1/accounts", admin).get_json()["accounts"]
    assert [a["name"] for a in listed] == ["root", "ruth"] and all("token" not in a for a in listed)

    revoked = api.call("POST", "/v1/accounts/ruth/token", admin).get_json()  # ruth's token leaked
    assert revoked["token"] is None and revoked["token_revoked"] is True  # the admin never holds ruth's token
    _problem(api.call("GET", "/v1/me", ruth["token"]), 401)
    with unit_of_work(api.rt.engine) as s:  # the operator issues the new one (consentgate accounts rotate-token)
        fresh = rotate_token(s, s.exec(select(Account).where(Account.name == "ruth")).one(), actor=None)
    assert api.call("GET", "/v1/me", fresh).get_json()["name"] == "ruth"
    assert [n["kind"] for n in api.notifications(fresh)] == ["account:token:revoked"]

    with Session(api.rt.engine) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.subject == ruth["id"])
                        .order_by(sa.asc(AuditEvent.id))).all()  # type: ignore[arg-type]
    admin_id = api.call("GET", "/v1/me", admin).get_json()["id"]
    assert [(e.tag, e.actor_id) for e in events] == [("account:create", admin_id), ("account:token:rotate", admin_id),
                                                     ("account:token:rotate", None)]


def test_only_admins_manage_accounts(api):
    creator = api.account("carol")
    _problem(api.call("POST", "/v1/accounts", creator, json={"name": "mallory", "role": "admin"}), 403)
    _problem(api.call("GET", "/v1/accounts", creator), 403)
    _problem(api.call("POST", "/v1/accounts/carol/token", creator), 403)
    _problem(api.call("GET", "/v1/accounts"), 401)


def test_bad_account_requests_are_named_and_change_nothing(api):
    admin = api.account("root", "admin")
    cases = [
        ({"name": "Bad Name!", "role": "creator"}, 422, "account names"),
        ({"role": "creator"}, 422, "account names"),
        ({"name": "dave", "role": "overlord"}, 422, "role must be one of"),
        ({"name": "dave", "role": "creator", "daily_quota": -1}, 422, "daily_quota"),
        ({"name": "dave", "role": "creator", "daily_quota": True}, 422, "daily_quota"),
        ({"name": "dave", "role": "creator", "quota": 3}, 422, "unknown fields"),
        ({"name": "root", "role": "creator"}, 409, "already exists"),
    ]
    for body, status, words in cases:
        assert words in _problem(api.call("POST", "/v1/accounts", admin, json=body), status)["detail"], body
    _problem(api.call("POST", "/v1/accounts", admin, data="name=dave", content_type="text/plain"), 400)
    _problem(api.call("POST", "/v1/accounts/nobody/token", admin), 404)
    assert [a["name"] for a in api.call("GET", "/v1/accounts", admin).get_json()["accounts"]] == ["root"]


def test_cli_rotates_a_token(tmp_path, capsys):
    var = str(tmp_path / "var")
    assert main(["--data-dir", var, "accounts", "create", "erin", "--role", "creator"]) == 0
    capsys.readouterr()
    assert main(["--data-dir", var, "accounts", "rotate-token", "erin"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert "old API token no longer works" in out[0] and out[-1].startswith("cg_")
    assert main(["--data-dir", var, "accounts", "rotate-token", "nobody"]) == 1
    err = capsys.readouterr().err
    assert "no account 'nobody'" in err and err.strip().count("\n") == 0

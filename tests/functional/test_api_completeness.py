"""What a client needs at once (issue 13, part 3), over HTTP: every list paged by cursor, regulators listing
generations, the quota in ``/v1/me`` and on the 429, the log's trust anchor and the offline check of a signed
head, malformed JSON named as such, one structured log record per request, and the accounts CLI."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from sqlmodel import select

from governance import logs, pagination
from governance.accounts.models import Account, Notification
from governance.cli import main
from governance.columns import utcnow
from governance.db import unit_of_work
from governance.generations.models import Generation, GenerationState
from governance.guardians.models import GuardianApproval
from governance.likenesses.models import Dispute, DisputeKind, Figure
from governance.models import AuditEvent
from governance.notices.models import Notice, OnBehalfOf
from tests import factories


def _problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.get_json())
    assert r.mimetype == "application/problem+json"
    body: dict[str, Any] = r.get_json()
    return body


def _walk(api: Any, token: str | None, path: str, key: str, limit: int) -> tuple[list[Any], int]:
    """Follow ``next`` from ``path?limit=...`` to the end; the items and the number of pages."""
    sep = "&" if "?" in path else "?"
    url: str | None = f"{path}{sep}limit={limit}"
    items: list[Any] = []
    pages = 0
    while url is not None:
        r = api.call("GET", url, token)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert len(body[key]) <= limit
        items.extend(body[key])
        pages += 1
        url = body["next"]
        if url is not None:
            assert r.headers["Link"] == f'<{url}>; rel="next"'
            assert len(body[key]) == limit  # only a full page has a next one
        else:
            assert "Link" not in r.headers
        assert pages < 100
    return items, pages


# -- pagination ------------------------------------------------------------------------------------------------
def test_generations_page_newest_first_and_rows_added_between_pages_shift_nothing(make_api):
    _pages_stay_put(make_api(worker="none"))


def test_paging_and_the_quota_count_on_postgres(pg_url, make_api):  # pg_url first: dropped after the app is closed
    """The same keyset order and quota query on PostgreSQL's timestamptz as on SQLite."""
    api = make_api(worker="none", database_url=pg_url, daily_quota=2)
    assert api.rt.engine.dialect.name == "postgresql"
    _pages_stay_put(api)
    quota = api.call("GET", "/v1/me", _token_of(api, "bob")).get_json()["quota"]
    assert (quota["used"], quota["left"]) == (2, 0)  # today's two (waiting: generation work), not the older six


def _token_of(api: Any, name: str) -> str:
    from governance.accounts.services import rotate_token

    with unit_of_work(api.rt.engine) as s:
        return rotate_token(s, s.exec(select(Account).where(Account.name == name)).one(), actor=None)


def _pages_stay_put(api: Any) -> None:
    with unit_of_work(api.rt.engine) as s:
        bob, token = factories.account(s, "bob")
        t0 = utcnow() - timedelta(days=2)
        # three pairs requested in the same microsecond: the id breaks the tie, so each still has one place
        ids = [factories.generation(s, bob.id, created_at=t0 + timedelta(seconds=i // 2)).id for i in range(6)]
    expected = [g for _, g in sorted(((i // 2, g) for i, g in enumerate(ids)), reverse=True)]

    first = api.call("GET", "/v1/generations?limit=4", token).get_json()
    assert [g["id"] for g in first["generations"]] == expected[:4]
    nxt = first["next"]
    assert nxt.startswith("/v1/generations?") and parse_qs(urlparse(nxt).query)["limit"] == ["4"]

    with unit_of_work(api.rt.engine) as s:  # two new requests arrive before the client asks for page two
        newer = [factories.generation(s, bob.id).id for _ in range(2)]
    second = api.call("GET", nxt, token).get_json()
    assert [g["id"] for g in second["generations"]] == expected[4:] and second["next"] is None
    everything, pages = _walk(api, token, "/v1/generations", "generations", 3)
    assert [g["id"] for g in everything] == newer[::-1] + expected
    assert pages == 3
    # the default page holds DEFAULT_LIMIT rows and says so by having no next link here
    assert api.call("GET", "/v1/generations", token).get_json()["next"] is None


@pytest.mark.parametrize("query, says", [
    ("limit=0", "limit must be a whole number from 1 to 500"),
    (f"limit={pagination.MAX_LIMIT + 1}", "limit must be a whole number from 1 to 500"),
    ("limit=-3", "limit must be"),
    ("limit=ten", "limit must be"),
    ("limit=%C2%B2", "limit must be"),  # '²': a digit to str.isdigit(), not to int()
    ("limit=99999999999999999999", "limit must be"),
    ("limit=", "limit must be"),
    ("cursor=not-a-cursor", "the cursor is not one this service made"),
    ("cursor=", "the cursor is not one this service made"),
    ("cursor=" + "A" * 2000, "the cursor is not one this service made"),
    ("cursor=" + base64.urlsafe_b64encode(b'{"l":"generations","k":[["t","yesterday"],["s","gen_1"]]}').decode(),
     "the cursor is not one this service made"),
    ("cursor=" + base64.urlsafe_b64encode(b'{"l":"generations","k":[["t","2026-01-01T00:00:00"],["s","x"]]}')
     .decode(), "the cursor is not one this service made"),  # a naive time
    ("cursor=" + base64.urlsafe_b64encode(b'{"l":"generations","k":[["x",1]]}').decode(),
     "the cursor is not one this service made"),
    ("cursor=" + base64.urlsafe_b64encode(b'[1,2]').decode(), "the cursor is not one this service made"),
    ("cursor=" + pagination.encode_cursor("generations", ("gen_1",), b"not the service's key" * 2),
     "the cursor is not one this service made"),  # signed, but not with this service's key
    ("cursor=abc%00def", "the cursor is not one this service made"),
])
def test_a_bad_limit_or_cursor_is_a_400_that_says_what_is_wrong(api, query, says):
    token = api.account("bob")
    body = _problem(api.call("GET", f"/v1/generations?{query}", token), 400)
    assert says in body["detail"]


def _cursor_problems(api, pg: bool) -> None:
    """A cursor is the service's own (signed), bound to one list and one reader: anything else is a 400."""
    with unit_of_work(api.rt.engine) as s:
        _, root_t = factories.account(s, "root", "admin")
        _, root2_t = factories.account(s, "root2", "admin")
        alice, alice_t = factories.account(s, "alice")
    page = api.call("GET", "/v1/accounts?limit=1", root_t).get_json()
    cursor = parse_qs(urlparse(page["next"]).query)["cursor"][0]
    assert api.call("GET", f"/v1/accounts?limit=1&cursor={cursor}", root_t).status_code == 200
    # another reader's cursor, for a list both may read (the tester's case: admin2 uses admin's next)
    assert "not made for this list" in _problem(
        api.call("GET", f"/v1/accounts?limit=1&cursor={cursor}", root2_t), 400)["detail"]
    # hand-made cursors: the old unsigned form, a real one with its payload changed, one with a NUL
    root = api.call("GET", "/v1/me", root_t).get_json()["id"]
    unsigned = base64.urlsafe_b64encode(json.dumps({"l": f"accounts|{root}", "k": [["s", "a"]]}).encode()).decode()
    payload, _, sig = cursor.partition(".")
    forged = base64.urlsafe_b64encode(json.dumps({"l": f"accounts|{root}", "k": [["s", "zzz"]]},
                                                 separators=(",", ":")).encode()).decode().rstrip("=")
    for bad in (unsigned, f"{forged}.{sig}", cursor[:5] + "%00" + cursor[5:], cursor + "%00",
                pagination.encode_cursor(f"accounts|{root}", ("a",), b"guessed key" * 3)):
        assert "the cursor is not one this service made" in _problem(
            api.call("GET", f"/v1/accounts?limit=1&cursor={bad}", root_t), 400)["detail"], (pg, bad)
    # and, signed with the service's own key, a cursor of another list or of another shape
    key = api.rt.keys.cursor_key
    for other in (pagination.encode_cursor(f"figures|{root}", ("a", "b"), key),
                  pagination.encode_cursor(f"accounts|{alice.id}", ("a",), key)):
        assert "not made for this list" in _problem(
            api.call("GET", f"/v1/accounts?limit=1&cursor={other}", root_t), 400)["detail"]
    wrong_shape = pagination.encode_cursor(f"generations|{alice.id}", ("gen_1",), key)
    assert "not made for this list" in _problem(
        api.call("GET", f"/v1/generations?cursor={wrong_shape}", alice_t), 400)["detail"]


def test_a_cursor_is_signed_and_bound_to_its_reader(api):
    _cursor_problems(api, pg=False)


def test_a_cursor_is_signed_and_bound_to_its_reader_on_postgres(pg_url, make_api):
    api = make_api(worker="none", database_url=pg_url)
    _cursor_problems(api, pg=True)


def test_the_cursor_key_is_made_at_init_private(api):
    path = api.rt.settings.keys_dir / "cursor.key"
    assert path.is_file() and path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_bytes()) == 32 and api.rt.keys.cursor_key == path.read_bytes()


def test_a_cursor_is_bound_to_its_list_and_its_reader(api):
    with unit_of_work(api.rt.engine) as s:
        alice, a_token = factories.account(s, "alice")
        bob, b_token = factories.account(s, "bob")
        for who in (alice, bob):
            for i in range(3):
                s.add(Notification(account_id=who.id, kind="test", message=f"n{i}"))
    page = api.call("GET", "/v1/notifications?limit=1", a_token).get_json()
    cursor = parse_qs(urlparse(page["next"]).query)["cursor"][0]
    assert "not made for this list" in _problem(
        api.call("GET", f"/v1/notifications?limit=1&cursor={cursor}", b_token), 400)["detail"]
    assert "not made for this list" in _problem(
        api.call("GET", f"/v1/likenesses?cursor={cursor}", a_token), 400)["detail"]
    again = api.call("GET", f"/v1/notifications?limit=1&cursor={cursor}", a_token)
    assert again.status_code == 200 and again.get_json()["notifications"][0]["message"] == "n1"


def test_every_list_is_paged(api):
    """Each list endpoint walked one row a page: every row once, in its documented order."""
    with unit_of_work(api.rt.engine) as s:
        admin, admin_t = factories.account(s, "root", "admin")
        studio, studio_t = factories.account(s, "studio", "rights_holder")
        alice, alice_t = factories.account(s, "alice")
        friends = [factories.account(s, f"friend-{i}")[0] for i in range(3)]
        lks = [factories.likeness(s, alice.id) for _ in range(3)]
        gens = [factories.generation(s, friends[0].id, named=[lks[0].id], state=GenerationState.RELEASED)
                for _ in range(3)]
        for i in range(3):
            s.add(Notification(account_id=alice.id, kind="test", message=f"n{i}"))
            s.add(Dispute(kind=DisputeKind.IDENTITY, likeness_id=lks[i].id, claimant_id=alice.id))
            s.add(Figure(name=f"Figure {2 - i}", backend="dlib-resnet-v1",
                         template=factories.template().to_bytes(), embeddings=1))
        gwen, gwen_t = factories.account(s, "gwen")
        _, reg_t = factories.account(s, "ruth", "regulator")
        for i in range(3):
            s.add(GuardianApproval(likeness_id=lks[i].id, grantee_id=friends[i].id, minor_id=alice.id,
                                   guardian_id=gwen.id))
            s.add(Notice(token_hash=f"{i:064x}", contact="filer@example.org", on_behalf_of=OnBehalfOf.SELF,
                         statement="this is me", generation_id=gens[i].id, source="generation_id"))
        alice_id, lk0 = alice.id, lks[0].id
        gen_ids = [g.id for g in gens]
    for f in ("friend-2", "friend-0", "friend-1"):
        assert api.call("PUT", f"/v1/contacts/{f}", alice_t).status_code == 204
    for name in ("Robo Pup", "Captain Comet", "Star Cat"):
        r = api.call("POST", "/v1/characters", studio_t, json={"name": name, "rule": "deny"})
        assert r.status_code == 201, r.get_json()

    def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
        return [x[key] for x in items]

    accounts, pages = _walk(api, admin_t, "/v1/accounts", "accounts", 1)
    assert names(accounts) == sorted(["root", "studio", "alice", "friend-0", "friend-1", "friend-2", "gwen", "ruth"])
    assert pages == 8
    contacts, _ = _walk(api, alice_t, "/v1/contacts", "contacts", 2)
    assert names(contacts) == ["friend-0", "friend-1", "friend-2"]
    notes, _ = _walk(api, alice_t, "/v1/notifications", "notifications", 1)
    assert sorted(names(notes, "message")) == ["n0", "n1", "n2"] and len(notes) == 3
    mine, _ = _walk(api, alice_t, "/v1/likenesses", "likenesses", 1)
    assert {x["id"] for x in mine} == {lk.id for lk in lks} and len(mine) == 3
    used, _ = _walk(api, alice_t, f"/v1/likenesses/{lk0}/generations", "generations", 2)
    assert sorted(names(used, "id")) == sorted(gen_ids)
    disputes, _ = _walk(api, admin_t, "/v1/disputes?state=all", "disputes", 1)
    assert len({d["id"] for d in disputes}) == 3
    figures, _ = _walk(api, admin_t, "/v1/figures", "figures", 2)
    assert names(figures) == ["Figure 0", "Figure 1", "Figure 2"]
    characters, _ = _walk(api, alice_t, "/v1/characters", "characters", 1)
    assert names(characters) == ["Robo Pup", "Captain Comet", "Star Cat"]  # oldest first
    approvals, _ = _walk(api, gwen_t, "/v1/guardian/approvals", "approvals", 2)
    assert len({a["id"] for a in approvals}) == 3
    notices, _ = _walk(api, reg_t, "/v1/notices?state=all", "notices", 1)
    assert len({n["id"] for n in notices}) == 3
    assert alice_id  # the rows above belong to her


# -- regulators list generations ---------------------------------------------------------------------------------
def test_regulators_list_every_generation_with_state_and_date_filters(api):
    with unit_of_work(api.rt.engine) as s:
        bob, bob_t = factories.account(s, "bob")
        eve, eve_t = factories.account(s, "eve")
        _, reg_t = factories.account(s, "ruth", "regulator")
        _, admin_t = factories.account(s, "root", "admin")
        day = datetime(2026, 11, 20, 12, tzinfo=UTC)
        old = factories.generation(s, bob.id, state=GenerationState.RELEASED, created_at=day - timedelta(days=3)).id
        mid = factories.generation(s, eve.id, state=GenerationState.BLOCKED, created_at=day,
                                   reasons=["a character's rule"]).id
        new = factories.generation(s, bob.id, state=GenerationState.RELEASED, created_at=day + timedelta(days=3)).id

    def ids(token: str, query: str = "") -> list[str]:
        r = api.call("GET", f"/v1/generations{query}", token)
        assert r.status_code == 200, r.get_json()
        return [g["id"] for g in r.get_json()["generations"]]

    assert ids(reg_t) == [new, mid, old]  # everyone's, newest first
    assert ids(reg_t, "?state=released") == [new, old]
    assert ids(reg_t, "?state=blocked") == [mid]
    assert ids(reg_t, "?since=2026-11-20") == [new, mid]  # a date: midnight UTC, inclusive
    assert ids(reg_t, "?until=2026-11-20T12:00:00Z") == [old]  # exclusive
    assert ids(reg_t, "?since=2026-11-18T00:00:00%2B02:00&until=2026-11-21&state=blocked") == [mid]
    assert ids(reg_t, "?state=released&limit=1") == [new]
    full = api.call("GET", "/v1/generations?state=blocked", reg_t).get_json()["generations"][0]
    assert full["reasons"] == ["a character's rule"]  # what GET /v1/generations/{id} shows a regulator
    # everyone else still lists only what they requested, filters included
    assert ids(bob_t) == [new, old] and ids(eve_t) == [mid] and ids(bob_t, "?state=blocked") == []
    assert ids(admin_t) == []


@pytest.mark.parametrize("query, says", [
    ("state=done", "state must be one of"),
    ("since=yesterday", "since must be an ISO 8601 date or time"),
    ("until=2026-13-01", "until must be an ISO 8601"),
    ("since=2026-11-20T10:00:00", "since needs a time zone"),
    ("since=2026-11-21&until=2026-11-20", "until (2026-11-20) must be after since"),
    ("since=2026-11-21&until=2026-11-21", "must be after since"),
])
def test_bad_generation_filters_are_400s(api, query, says):
    token = api.account("ruth", "regulator")
    assert says in _problem(api.call("GET", f"/v1/generations?{query}", token), 400)["detail"]


# -- quota -----------------------------------------------------------------------------------------------------
def test_me_shows_the_quota_and_only_generation_work_uses_it(make_api):
    api = make_api(worker="none", daily_quota=3)
    bob = api.account("bob")
    with unit_of_work(api.rt.engine) as s:
        studio, studio_t = factories.account(s, "studio", "rights_holder")
        _, reg_t = factories.account(s, "ruth", "regulator")
    assert api.call("POST", "/v1/characters", studio_t, json={"name": "Robo Pup", "rule": "deny"}).status_code == 201

    quota = api.call("GET", "/v1/me", bob).get_json()["quota"]
    tomorrow = (utcnow() + timedelta(days=1)).date()
    assert quota == {"daily": 3, "used": 0, "left": 3, "refused": 0,
                     "resets_at": f"{tomorrow.isoformat()}T00:00:00+00:00"}
    assert "quota" not in api.call("GET", "/v1/me", reg_t).get_json()  # only accounts that may generate
    assert "quota" not in api.call("GET", "/v1/me", studio_t).get_json()

    for _ in range(2):  # blocked at the precheck by the character's rule: no generation work, no quota used
        r = api.call("POST", "/v1/generations", bob, json={"prompt": "Robo Pup flies", "seed": 1})
        assert r.status_code == 202 and r.get_json()["state"] == "blocked"
    quota = api.call("GET", "/v1/me", bob).get_json()["quota"]
    # no generation used, but one more refusal would spend the refusals' bound: one request is sure to be taken
    assert (quota["used"], quota["left"], quota["refused"]) == (0, 1, 2)

    api.generate(bob, "a quiet lake")  # prechecked: waiting for a worker is generation work
    with unit_of_work(api.rt.engine) as s:  # one that a worker took and a later stage blocked counts too
        bob_id = s.exec(select(Account).where(Account.name == "bob")).one().id
        factories.generation(s, bob_id, state=GenerationState.BLOCKED, claimed_by="w1", reasons=["scan"])
        factories.generation(s, bob_id, created_at=utcnow() - timedelta(days=1))  # yesterday's: not today's
    assert api.call("GET", "/v1/me", bob).get_json()["quota"] | {"resets_at": None} == {
        "daily": 3, "used": 2, "left": 1, "refused": 2, "resets_at": None}
    api.generate(bob, "a windy beach")
    assert api.call("GET", "/v1/me", bob).get_json()["quota"]["left"] == 0

    r = api.call("POST", "/v1/generations", bob, json={"prompt": "one more", "seed": 1})
    body = _problem(r, 429)
    wait = int(r.headers["Retry-After"])
    reset = datetime.fromisoformat(body["resets_at"])
    assert 1 <= wait <= 86_400 and abs((utcnow() + timedelta(seconds=wait) - reset).total_seconds()) < 5
    assert body["quota"] == 3 and "resets at" in body["detail"]
    with unit_of_work(api.rt.engine) as s:  # the refusal wrote nothing
        assert len(s.exec(select(Generation).where(Generation.requester_id == bob_id)).all()) == 2 + 2 + 2


def test_refusals_at_the_precheck_are_free_but_bounded_by_the_quota(make_api):
    """Probing the rules (which characters are denied, which names are protected figures) or notifying a likeness's
    owner again and again costs no generation, but no more than ``daily`` refusals a day are accepted; after
    that every request waits for the reset, so the answer says nothing about the prompt."""
    api = make_api(worker="none", daily_quota=2)
    bob = api.account("bob")
    studio = api.account("studio", "rights_holder")
    assert api.call("POST", "/v1/characters", studio, json={"name": "Robo Pup", "rule": "deny"}).status_code == 201
    api.generate(bob, "a quiet lake")  # one generation: 1 of 2 used
    for _ in range(2):
        assert api.generate(bob, "Robo Pup flies")["state"] == "blocked"
    quota = api.call("GET", "/v1/me", bob).get_json()["quota"]
    assert (quota["used"], quota["refused"]) == (1, 2)  # the refusals used no generation...
    assert quota["left"] == 0  # ...but spent their own bound: /v1/me says the next request is a 429, as it is
    for prompt in ("Robo Pup again", "a windy beach"):  # refused or not, the same answer: no oracle
        r = api.call("POST", "/v1/generations", bob, json={"prompt": prompt})
        body = _problem(r, 429)
        assert body["refused"] == 2 and "refused at the precheck" in body["detail"]
        assert int(r.headers["Retry-After"]) > 0
    with unit_of_work(api.rt.engine) as s:
        assert len(s.exec(select(Generation)).all()) == 3


# -- the log's trust anchor --------------------------------------------------------------------------------------
def test_the_signed_tree_head_checks_out_under_the_served_trust_anchor(api, tmp_path, capsys):
    """README, "Checking the log": the commands a reader runs, with the test client standing in for curl."""
    r = api.call("GET", "/v1/log")
    head = r.get_json()
    assert set(head) == {"tree_size", "root_hash", "timestamp", "alg", "signature", "certificate_chain_pem"}
    assert r.headers["Link"] == '</v1/log/trust-anchor>; rel="trust-anchor"; type="application/x-pem-file"'
    anchor = api.call("GET", "/v1/log/trust-anchor")
    assert anchor.status_code == 200 and anchor.mimetype == "application/x-pem-file"
    pem = anchor.data
    assert pem == (api.rt.settings.keys_dir / "c2pa" / "root-ca.pem").read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    fp = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()
    assert anchor.headers["X-Certificate-SHA256"] == fp

    (tmp_path / "head.json").write_bytes(r.data)
    (tmp_path / "root-ca.pem").write_bytes(pem)
    capsys.readouterr()
    assert main(["log", "verify-head", str(tmp_path / "head.json"), "--anchor", str(tmp_path / "root-ca.pem"),
                 "--sha256", ":".join(fp[i:i + 2] for i in range(0, 64, 2)).upper()]) == 0
    assert f"signed tree head OK: {head['tree_size']} entries" in capsys.readouterr().out

    # a head whose size or root was changed, an anchor that is not the service's, or a pinned fingerprint
    # that does not match: exit 2 and one line saying which
    forged = {**head, "tree_size": head["tree_size"] + 1}
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    assert main(["log", "verify-head", str(tmp_path / "forged.json"), "--anchor", str(tmp_path / "root-ca.pem")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not verify" in err
    from provenance.keys import ensure_dev_ca

    (tmp_path / "other-ca.pem").write_bytes(ensure_dev_ca(tmp_path / "other-ca").root_pem)
    assert main(["log", "verify-head", str(tmp_path / "head.json"), "--anchor", str(tmp_path / "other-ca.pem")]) == 2
    assert "is not issued by" in capsys.readouterr().err
    assert main(["log", "verify-head", str(tmp_path / "head.json"), "--anchor", str(tmp_path / "root-ca.pem"),
                 "--sha256", "00" * 32]) == 2
    assert "not the root the operator published" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("{not json")
    assert main(["log", "verify-head", str(tmp_path / "junk.json"), "--anchor", str(tmp_path / "root-ca.pem")]) == 2
    assert "is not JSON" in capsys.readouterr().err
    # a missing head or anchor file: exit 2 and one line too, like every other failure (README)
    assert main(["log", "verify-head", str(tmp_path / "missing.json"), "--anchor", str(tmp_path / "root-ca.pem")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err and "missing.json" in err
    assert main(["log", "verify-head", str(tmp_path / "head.json"), "--anchor", str(tmp_path / "missing.pem")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err and "missing.pem" in err
    (tmp_path / "junk.pem").write_text("not a certificate")
    assert main(["log", "verify-head", str(tmp_path / "head.json"), "--anchor", str(tmp_path / "junk.pem")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


# -- malformed JSON ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, content_type, says", [
    (b'{"prompt": "a lake",', "application/json", "malformed JSON at line 1, column 21"),
    (b"", "application/json", "malformed JSON"),
    (b"\xff\xfe\xfa", "application/json", "malformed JSON"),
    (b'{"prompt": "a lake"}', "text/plain", "expected a JSON object body with Content-Type: application/json"),
    (b'{"prompt": "a lake"}', None, "expected a JSON object body with Content-Type: application/json"),
    (b'["a lake"]', "application/json", "expected a JSON object, got an array"),
    (b'"a lake"', "application/json; charset=utf-8", "expected a JSON object, got a string"),
    (b"null", "application/json", "expected a JSON object, got null"),
])
def test_malformed_json_is_named_as_such(api, body, content_type, says):
    token = api.account("bob")
    kw: dict[str, Any] = {"data": body}
    if content_type:
        kw["content_type"] = content_type
    detail = _problem(api.call("POST", "/v1/generations", token, **kw), 400)["detail"]
    assert says in detail
    if content_type and content_type.startswith("application/json"):
        assert "Content-Type" not in detail
    with unit_of_work(api.rt.engine) as s:
        assert s.exec(select(Generation)).all() == []


# -- structured logs ---------------------------------------------------------------------------------------------
class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(logs._Context("test"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Any:
    handler = _Keep()
    loggers = [logging.getLogger(logs.REQUEST_LOGGER), logging.getLogger("governance.generations.pipeline")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    yield handler.records
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_each_request_leaves_one_record_without_its_token(api, kept):
    token = api.account("bob")
    api.call("GET", "/v1/me?x=1", token)
    api.call("GET", "/v1/me", "cg_not-a-token")
    api.call("POST", "/v1/generations", token, data=b"{", content_type="application/json")
    api.call("GET", "/healthz")
    requests = [r for r in kept if r.name == logs.REQUEST_LOGGER]
    assert [(r.method, r.path, r.status) for r in requests] == [
        ("GET", "/v1/me", 200), ("GET", "/v1/me", 401), ("POST", "/v1/generations", 400), ("GET", "/healthz", 200)]
    with unit_of_work(api.rt.engine) as s:
        bob_id = s.exec(select(Account).where(Account.name == "bob")).one().id
    assert [r.account_id for r in requests] == [bob_id, "-", bob_id, "-"]
    assert all(isinstance(r.duration_ms, float) and r.duration_ms >= 0 for r in requests)
    lines = [logs.JsonFormatter().format(r) for r in requests]
    first = json.loads(lines[0])
    assert {k: first[k] for k in ("method", "path", "status", "account_id")} == {
        "method": "GET", "path": "/v1/me", "status": 200, "account_id": bob_id} and "duration_ms" in first
    assert not any(token in line or "cg_not-a-token" in line or "x=1" in line for line in lines)


def test_every_generation_stage_is_a_record_with_the_generation_id(make_api, kept):
    api = make_api(duration_s=1.0, frame_size=128)
    with unit_of_work(api.rt.engine) as s:
        _, bob = factories.account(s, "bob")
        _, studio = factories.account(s, "studio", "rights_holder")
    assert api.call("POST", "/v1/characters", studio, json={"name": "Robo Pup", "rule": "deny"}).status_code == 201
    blocked = api.generate(bob, "Robo Pup at sea")
    gen = api.generate(bob, "a kite over the dunes")
    assert api.wait(bob, gen["id"])["state"] == "released"
    assert api.rt.pipeline.wait_idle(30)
    stages = [(r.stage, getattr(r, "state", None)) for r in kept
              if getattr(r, "stage", None) and r.generation_id == gen["id"]]
    assert stages[0] == ("precheck", "prechecked")
    assert [s for s, _ in stages[1:4]] == ["generating", "scanning", "sealing"] and stages[-1] == ("release",
                                                                                                   "released")
    assert [(r.stage, r.state) for r in kept if getattr(r, "generation_id", None) == blocked["id"]] == [
        ("precheck", "blocked")]
    line = json.loads(logs.JsonFormatter().format(next(r for r in kept if getattr(r, "stage", "") == "scanning")))
    assert line["generation_id"] == gen["id"] and line["seconds"] >= 0


# -- the accounts CLI --------------------------------------------------------------------------------------------
def test_cli_lists_accounts_and_sets_daily_quotas(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GOVERNANCE_DAILY_QUOTA", "30")
    d = ["--data-dir", str(tmp_path / "var")]
    assert main([*d, "init"]) == 0
    assert main([*d, "accounts", "create", "bob", "--role", "creator", "--daily-quota", "5"]) == 0
    out = capsys.readouterr().out
    assert "a daily quota of 5" in out and out.splitlines()[-1].startswith("cg_")
    assert main([*d, "accounts", "create", "ruth", "--role", "regulator"]) == 0
    capsys.readouterr()
    assert main([*d, "accounts", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["bob", "ruth"]
    assert "5/day" in out[0] and "30/day (default)" in out[1] and "cg_" not in "".join(out)
    assert main([*d, "accounts", "set-quota", "bob", "--daily-quota", "default"]) == 0
    assert main([*d, "accounts", "set-quota", "ruth", "--daily-quota", "0"]) == 0
    capsys.readouterr()
    assert main([*d, "accounts", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["daily_quota"]) for r in rows] == [("bob", None), ("ruth", 0)]
    assert all("token" not in r for r in rows)

    for argv, says in [
        (["accounts", "create", "dave", "--role", "creator", "--daily-quota", "-1"], "--daily-quota must be"),
        (["accounts", "create", "dave", "--role", "creator", "--daily-quota", "lots"], "--daily-quota must be"),
        (["accounts", "set-quota", "bob", "--daily-quota", "100001"], "--daily-quota must be"),
        (["accounts", "set-quota", "bob", "--daily-quota", "\u00b2"], "--daily-quota must be"),
    ]:
        with pytest.raises(SystemExit, match=says) as e:
            main([*d, *argv])
        assert "\n" not in str(e.value.code)
    assert main([*d, "accounts", "set-quota", "nobody", "--daily-quota", "3"]) == 1
    assert capsys.readouterr().err == "consentgate: no account 'nobody'\n"
    assert main([*d, "accounts", "list", "--json"]) == 0  # nothing half-done: dave does not exist
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["bob", "ruth"]
    from governance.config import Settings
    from governance.db import make_engine

    engine = make_engine(Settings(data_dir=tmp_path / "var").db_url)
    try:
        with unit_of_work(engine) as s:
            events = s.exec(select(AuditEvent).where(AuditEvent.tag == "account:quota:set")).all()
            assert [(e.data["before"], e.data["after"], e.actor_id) for e in events] == [(5, None, None),
                                                                                       (None, 0, None)]
    finally:
        engine.dispose()

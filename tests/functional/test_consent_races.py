"""Every consent change serialises with the release, on SQLite (the embedded default) and on PostgreSQL.

The release transaction is caught at two points, and a consent change is made from a second thread there:

- right *after* its final consent check (before its commit): the change must wait until the release has
  committed; the video is released (it was allowed when it was checked) and the change holds for the next
  request;
- right *before* it starts, with the change written but not yet committed: the release must wait for the
  change and then see it, so the generation is blocked.

Either way, never "the change committed first, yet the video was released". docs/security.md ("Consent
changes and the release serialize") says what is locked, and in which order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import Session, select

from governance.accounts import services as accounts_svc
from governance.accounts.models import Account
from governance.generations import gate
from governance.generations.models import Generation, GenerationState
from governance.likenesses.models import Likeness
from governance.likenesses.services import likenesses as likenesses_svc
from governance.workflows import withdrawals

#: How long a consent change is given to commit while the release holds its locks: if it has not committed by
#: then, it is waiting for them (it takes milliseconds when nothing holds it back).
HOLD_S = 1.5


@dataclass(frozen=True)
class World:
    alice: str  # the likeness owner (account id)
    bob: str  # the requester, allowed by a grant or as alice's mutual contact
    carol: str  # lists alice as a contact; holds no grant
    likeness: str
    tokens: dict[str, str]


def _revoke(s: Session, w: World) -> None:
    withdrawals.revoke(s, s.get(Account, w.alice), s.get(Likeness, w.likeness), "bob")


def _only_me(s: Session, w: World) -> None:
    withdrawals.set_mode(s, s.get(Account, w.alice), s.get(Likeness, w.likeness), "only_me")


def _delete(s: Session, w: World) -> None:
    withdrawals.delete_likeness(s, s.get(Account, w.alice), s.get(Likeness, w.likeness))


def _owner_drops_requester(s: Session, w: World) -> None:
    accounts_svc.remove_contact(s, s.get(Account, w.alice), "bob")


def _requester_drops_owner(s: Session, w: World) -> None:
    accounts_svc.remove_contact(s, s.get(Account, w.bob), "alice")


def _grant_carol(s: Session, w: World) -> None:
    likenesses_svc.grant(s, s.get(Account, w.alice), s.get(Likeness, w.likeness), "carol")


def _owner_adds_carol(s: Session, w: World) -> None:
    accounts_svc.add_contact(s, s.get(Account, w.alice), "carol")


@dataclass(frozen=True)
class Change:
    """A consent change as its view makes it (the accounts and the likeness are read before the service runs)."""

    apply: Callable[[Session, World], None]
    mode: str  # the likeness's mode; "mutuals" makes bob a mutual contact of alice, otherwise bob holds a grant
    narrows: bool  # takes bob's consent away (otherwise: gives carol some)


CHANGES = {
    "revoke": Change(_revoke, "approved", narrows=True),
    "mode only_me": Change(_only_me, "approved", narrows=True),
    "delete likeness": Change(_delete, "approved", narrows=True),
    "owner removes contact": Change(_owner_drops_requester, "mutuals", narrows=True),
    "requester removes contact": Change(_requester_drops_owner, "mutuals", narrows=True),
    "grant": Change(_grant_carol, "approved", narrows=False),
    "add contact": Change(_owner_adds_carol, "mutuals", narrows=False),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """make_api settings for each database (ask for it before make_api: a PostgreSQL database is dropped last)."""
    yield {} if request.param == "sqlite" else {"database_url": request.getfixturevalue("pg_url")}


def _world(api: Any, faces_dir: Any, change: Change) -> World:
    tokens = {name: api.account(name) for name in ("alice", "bob", "carol")}
    ids = {name: api.call("GET", "/v1/me", t).get_json()["id"] for name, t in tokens.items()}
    lk = api.enroll_as_live(tokens["alice"], faces_dir / "biden2.jpg")["id"]
    assert api.call("PATCH", f"/v1/likenesses/{lk}", tokens["alice"], json={"mode": change.mode}).status_code == 200
    if change.mode == "mutuals":
        assert api.call("PUT", "/v1/contacts/bob", tokens["alice"]).status_code == 204
        assert api.call("PUT", "/v1/contacts/alice", tokens["bob"]).status_code == 204
        listed = api.call("GET", "/v1/contacts", tokens["bob"]).get_json()["contacts"]
        assert listed == [{"name": "alice", "mutual": True}]
    else:
        assert api.call("PUT", f"/v1/likenesses/{lk}/grants/bob", tokens["alice"]).status_code == 201
    assert api.call("PUT", "/v1/contacts/alice", tokens["carol"]).status_code == 204
    return World(ids["alice"], ids["bob"], ids["carol"], lk, tokens)


class _Racer:
    """Makes ``change`` in its own session and thread; ``hold`` keeps it written but uncommitted until
    ``release_checked`` is set or HOLD_S passes. Records the generation's state as the change commits."""

    def __init__(self, engine: Any, world: World, change: Change, *, hold: bool) -> None:
        self.engine, self.world, self.change, self.hold = engine, world, change, hold
        self.written, self.committed, self.release_checked = threading.Event(), threading.Event(), threading.Event()
        self.generation_id = ""
        self.state_at_commit: GenerationState | None = None
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="consent-change")

    def start(self, generation_id: str) -> None:
        self.generation_id = generation_id
        self.thread.start()

    def _run(self) -> None:
        try:
            with Session(self.engine) as s:
                self.change.apply(s, self.world)
                s.flush()
                self.written.set()
                if self.hold:
                    self.release_checked.wait(HOLD_S)
                # the generation as the change's own transaction sees it last: did the release commit first?
                self.state_at_commit = s.exec(select(Generation.state)
                                              .where(Generation.id == self.generation_id)).one()
                s.commit()
        except BaseException as e:  # reported by the test
            self.errors.append(e)
        finally:
            self.written.set()
            self.committed.set()


def _race(api: Any, monkeypatch: pytest.MonkeyPatch, racer: _Racer, *, after_check: bool) -> dict[str, Any]:
    """Run bob's generation with ``racer`` started at the chosen point of the release transaction."""
    final_check = gate.consent_or_stop
    seen: dict[str, bool] = {}

    def consent_or_stop(session: Session, gen: Generation, likeness_ids: Any, stage: str, **kw: Any) -> Any:
        try:
            checks = final_check(session, gen, likeness_ids, stage, **kw)
        finally:
            if stage == "release":
                racer.release_checked.set()
        if stage == "release" and after_check:  # still inside the release transaction, before its commit
            racer.start(gen.id)
            seen["committed_before_release"] = racer.committed.wait(HOLD_S)
            # readers are not held up meanwhile (WAL on SQLite; no advisory or row lock on PostgreSQL)
            r = api.app.test_client().get(f"/v1/generations/{gen.id}",
                                          headers={"Authorization": f"Bearer {racer.world.tokens['bob']}"})
            seen["read_while_held"] = r.status_code == 200 and r.get_json()["state"] == "sealing"
        return checks

    def before_release(generation_id: str) -> None:  # the "sealed" event comes right before the release transaction
        racer.start(generation_id)
        assert racer.written.wait(30)

    monkeypatch.setattr(gate, "consent_or_stop", consent_or_stop)
    if not after_check:
        api.rt.pipeline.on("sealed", before_release)
    done: dict[str, Any] = api.wait(racer.world.tokens["bob"], api.generate(racer.world.tokens["bob"], "night city",
                                                                           [racer.world.likeness])["id"])
    racer.thread.join(60)
    assert not racer.thread.is_alive() and racer.errors == [], racer.errors
    done.update(seen)
    return done


def _never_released_after_the_change(done: dict[str, Any], racer: _Racer) -> None:
    assert not (done["state"] == "released" and racer.state_at_commit is not GenerationState.RELEASED), (
        f"the consent change committed while the generation was {racer.state_at_commit}, yet it was released")


def _next_request(api: Any, w: World, who: str) -> str:
    """The state of a new request by ``who`` for alice's likeness (or the error when it is refused outright)."""
    r = api.call("POST", "/v1/generations", w.tokens[who], json={"prompt": "night city", "likenesses": [w.likeness]})
    body = r.get_json()
    return str(body["state"]) if r.status_code == 202 else f"refused {r.status_code}"


@pytest.mark.parametrize("name", list(CHANGES))
def test_consent_change_right_after_the_final_check_waits_for_the_release(database, make_api, faces_dir, monkeypatch,
                                                                           name):
    api = make_api(**database)
    change = CHANGES[name]
    w = _world(api, faces_dir, change)
    racer = _Racer(api.rt.engine, w, change, hold=False)
    done = _race(api, monkeypatch, racer, after_check=True)
    _never_released_after_the_change(done, racer)
    # the change waited for the release's locks: it committed after the release, never first
    assert done["committed_before_release"] is False
    assert done["read_while_held"] is True
    assert racer.state_at_commit is GenerationState.RELEASED
    assert done["state"] == "released", done["reasons"]
    assert len(api.download(w.tokens["bob"], done["id"])) > 0
    # and it holds for what comes next
    if change.narrows:
        assert _next_request(api, w, "bob") in ("blocked", "refused 422")
    else:
        assert _next_request(api, w, "carol") == "prechecked"


@pytest.mark.parametrize("name", ["revoke", "owner removes contact", "requester removes contact"])
def test_consent_change_uncommitted_when_the_release_starts_is_seen(database, make_api, faces_dir, monkeypatch,
                                                                     name):
    api = make_api(**database)
    w = _world(api, faces_dir, CHANGES[name])
    racer = _Racer(api.rt.engine, w, CHANGES[name], hold=True)
    done = _race(api, monkeypatch, racer, after_check=False)
    _never_released_after_the_change(done, racer)
    # the release waited for the change, then saw it
    assert racer.state_at_commit is GenerationState.SEALING
    assert done["state"] == "blocked", done
    assert any("consent no longer holds at release" in r for r in done["reasons"]), done["reasons"]
    assert api.videos() == []

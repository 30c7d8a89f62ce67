"""The session-23 review of issue 12's decision path (``governance.db.insert_now``: a decision's rows inserted at
once, then ordinary ORM updates; migration 0015). The defect it found has its test beside insert_now's own
(tests/governance/test_insert_now.py: a rollback leaves the session as a flush would). Here, the decision's three
outcomes on PostgreSQL, where the rows go in by Core statements the SQLite tests do not exercise: a block that tells
the likeness's owner, a hold whose state and reasons are UPDATEs after the insert, and the audit trail of each in the
order it happened."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from governance.accounts.models import Notification
from governance.db import unit_of_work
from governance.generations.models import Generation, GenerationLikeness, GenerationState
from governance.models import AuditEvent
from governance.restrictions.models import RestrictionApproval

psycopg = pytest.importorskip("psycopg")


def _tags(api: Any, gen_id: str) -> list[str]:
    with unit_of_work(api.rt.engine) as s:
        return [e.tag for e in s.exec(select(AuditEvent).where(AuditEvent.subject == gen_id)
                                      .order_by(AuditEvent.id)).all()]  # type: ignore[arg-type]


def test_blocks_and_holds_are_written_whole_on_postgres(pg_url, make_api, faces_dir):  # pg_url first (conftest)
    api = make_api(database_url=pg_url)
    assert api.rt.engine.dialect.name == "postgresql"
    alice, bob = api.account("alice"), api.account("bob")
    lk = api.enroll_as_live(alice, faces_dir / "obama.jpg")
    # no consent: blocked at the precheck, the owner told, the request and the block audited in that order
    blocked = api.generate(bob, "night city", [lk["id"]])
    assert blocked["state"] == "blocked" and "no consent is on record" in blocked["reasons"][0]
    assert _tags(api, blocked["id"]) == ["generation:request", "generation:block"]
    [told] = [n for n in api.notifications(alice) if n["generation"] == blocked["id"]]
    assert "was blocked (precheck)" in told["message"]

    # consent for everyone, a restriction the prompt may break: held, its state and reasons written after the insert
    assert api.call("PATCH", f"/v1/likenesses/{lk['id']}", alice, json={"mode": "everyone"}).status_code == 200
    r = api.call("PUT", f"/v1/likenesses/{lk['id']}/restrictions", alice, json={"categories": ["violence"]})
    assert r.status_code == 200, r.get_json()
    held = api.generate(bob, "a cowboy holds a gun at dusk", [lk["id"]])
    assert held["state"] == "held", held
    body = api.call("GET", f"/v1/generations/{held['id']}", bob).get_json()  # a new request: what was committed
    assert body["state"] == "held" and body["reasons"] == held["reasons"]
    assert any("held for its owner's approval" in x for x in body["reasons"])
    assert _tags(api, held["id"]) == ["generation:request", "generation:hold"]
    with unit_of_work(api.rt.engine) as s:
        row = s.get(Generation, held["id"])
        assert row is not None and row.state.value == "held" and row.updated_at >= row.created_at
        assert [(x.likeness_id, x.named) for x in s.exec(select(GenerationLikeness).where(
            GenerationLikeness.generation_id == held["id"])).all()] == [(lk["id"], True)]
        approvals = s.exec(select(RestrictionApproval).where(RestrictionApproval.generation_id == held["id"])).all()
        assert [a.decision for a in approvals] == ["pending"]
        assert len(s.exec(select(Notification).where(Notification.generation_id == held["id"])).all()) == 2


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    from governance.accounts.models import Account, Role
    from governance.db import init_db, make_engine

    url = f"sqlite:///{tmp_path / 'g.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    eng = make_engine(url)
    init_db(eng)
    with unit_of_work(eng) as s:
        s.add(Account(id="acc_a", name="a", role=Role.CREATOR, token_hash="h"))
        s.add(Generation(id="gen_parent", requester_id="acc_a", prompt="a walk", seed=1,
                         likeness_ids=["lk_parents"], state=GenerationState.RELEASED))
    yield eng
    eng.dispose()


@pytest.mark.parametrize("named", [[], ["lk_unknown"]])
def test_a_remix_is_linked_and_audited_remix_request_block_in_order(engine, named):
    """The remix path (the edge to the parent, the lineage's likenesses named, the audit trail): the edge and its
    remix event are the unit of work's, the generation and its request event are inserted at once; the ids still
    follow what happened: remix, request, then the block (no consent for the lineage's likeness)."""
    from governance.accounts.models import Account
    from governance.generations.services.generations import request_generation
    from governance.remix.models import GenerationEdge

    with unit_of_work(engine) as s:
        requester = s.get(Account, "acc_a")
        gen = request_generation(s, requester, "the same walk, at night", named, 3, default_quota=10,
                                 remix_of="gen_parent")
        gen_id = gen.id
    with unit_of_work(engine) as s:
        events = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()  # type: ignore[arg-type]
        assert [(e.tag, e.subject) for e in events] == [
            ("generation:remix", gen_id), ("generation:request", gen_id), ("generation:block", gen_id)]
        assert events[0].data == {"parent": "gen_parent"}
        row = s.get(Generation, gen_id)
        assert row is not None and row.state is GenerationState.BLOCKED and row.likeness_ids == [*named, "lk_parents"]
        assert [(e.child_id, e.parent_id) for e in s.exec(select(GenerationEdge)).all()] == [(gen_id, "gen_parent")]
        links = s.exec(select(GenerationLikeness).where(GenerationLikeness.generation_id == gen_id)).all()
        assert sorted((x.likeness_id, x.named) for x in links) == sorted((x, True) for x in [*named, "lk_parents"])

"""``governance.db.insert_now`` (issue 12): rows inserted at once past the unit of work, yet in the session as if
flushed, in the order they were made, and gone with a rollback. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from governance.accounts.models import Account, Role
from governance.audit import Tag, record, record_now
from governance.db import init_db, insert_now, make_engine
from governance.generations.models import Generation, GenerationCharacter, GenerationState
from governance.likenesses.models import Likeness
from governance.models import AuditEvent


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path) -> Iterator[sa.Engine]:
    url = f"sqlite:///{tmp_path / 'g.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as s:
        s.add(Account(id="acc_a", name="a", role=Role.CREATOR, token_hash="h"))
        s.commit()
    yield engine
    engine.dispose()


def _statements(engine: sa.Engine) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2].split()[0].upper()))
    return seen


def test_rows_are_inserted_at_once_and_kept_as_persistent(engine):
    with Session(engine) as s:
        gen = Generation(requester_id="acc_a", prompt="p", seed=1)
        chars = [GenerationCharacter(generation_id=gen.id, character_id=f"ch_{i}", allowed=i % 2 == 0)
                 for i in range(3)]
        seen = _statements(engine)
        insert_now(s, [gen])
        insert_now(s, chars)  # one executemany
        assert seen == ["INSERT", "INSERT"]
        assert s.get(Generation, gen.id) is gen and seen == ["INSERT", "INSERT"]  # in the identity map: no SELECT
        assert not s.new and not s.dirty
        gen.state = GenerationState.BLOCKED  # later changes are ordinary updates
        gen_id = gen.id
        s.commit()
        assert "UPDATE" in seen
    with Session(engine) as s:
        assert s.get(Generation, gen_id).state is GenerationState.BLOCKED
        assert {(c.character_id, c.allowed) for c in s.exec(select(GenerationCharacter)).all()} == {
            ("ch_0", True), ("ch_1", False), ("ch_2", True)}


def test_pending_rows_go_first_and_the_database_numbers_an_integer_key(engine):
    """An audit event recorded for the unit of work, then one inserted now: the first is flushed first, so the ids
    (the audit's order) follow the order they were made in; each row read back has its id."""
    with Session(engine) as s:
        record(s, Tag.GENERATION_REQUEST, actor_id="acc_a", subject="gen_1")
        event = AuditEvent(tag="t", actor_id=None, subject="gen_1")
        insert_now(s, [event])
        assert event.id is not None and s.get(AuditEvent, event.id) is event  # numbered, and in the session
        record_now(s, Tag.GENERATION_BLOCK, actor_id=None, subject="gen_1", stage="precheck")
        s.commit()
    with Session(engine) as s:
        rows = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [r.tag for r in rows] == [Tag.GENERATION_REQUEST.value, "t", Tag.GENERATION_BLOCK.value]
        assert rows[2].data == {"stage": "precheck"}


def test_a_rollback_takes_the_rows_back(engine):
    with Session(engine) as s:
        gen = Generation(requester_id="acc_a", prompt="p", seed=1)
        insert_now(s, [gen])
        record_now(s, Tag.GENERATION_REQUEST, actor_id="acc_a", subject=gen.id)
        s.rollback()
    with Session(engine) as s:
        assert s.exec(select(Generation)).all() == [] and s.exec(select(AuditEvent)).all() == []


def test_a_row_breaking_a_constraint_fails_at_once_and_loses_nothing(engine):
    """The INSERT runs at the call, so a bad row fails there (not at a later flush), and the transaction rolls
    back whole."""
    with Session(engine) as s:
        first = Generation(requester_id="acc_a", prompt="p", seed=1)
        insert_now(s, [first])
        with pytest.raises(sa.exc.IntegrityError):
            insert_now(s, [Generation(id=first.id, requester_id="acc_a", prompt="again", seed=2)])
        s.rollback()
    with Session(engine) as s:
        assert s.exec(select(Generation)).all() == []


def test_what_it_refuses(engine):
    with Session(engine) as s:
        insert_now(s, [])  # nothing to do
        with pytest.raises(ValueError, match="one table"):
            insert_now(s, [Generation(requester_id="acc_a", prompt="p", seed=1),
                           AuditEvent(tag="t", actor_id=None, subject=None)])
        added = Generation(requester_id="acc_a", prompt="p", seed=1)
        s.add(added)
        with pytest.raises(ValueError, match="already in a session"):
            insert_now(s, [added])
        with pytest.raises(ValueError, match="change feed"):  # the feed sees new likenesses only through a flush
            insert_now(s, [Likeness(owner_id="acc_a", backend="b", template=b"t", embeddings=1)])
        assert list(s.new) == [added]  # a refused call flushed nothing
    with Session(engine) as other:
        assert other.exec(select(Generation)).all() == []


def test_a_rollback_leaves_the_session_as_a_flush_would(engine):
    """Rows inserted now and rolled back leave the session (transient again), as flushed ones do: the session goes
    on without them. Kept as persistent, they were ghosts of rows the database never kept: on SQLite the next audit
    event takes the same id (the rowid is reused) and could not join the session (review s23)."""
    with Session(engine) as s:
        gen = Generation(requester_id="acc_a", prompt="p", seed=1)
        first = AuditEvent(tag="t", actor_id=None, subject=gen.id)
        insert_now(s, [gen])
        insert_now(s, [first])
        s.rollback()
        assert sa.inspect(gen).transient and sa.inspect(first).transient
        assert gen not in s and first not in s
        again = AuditEvent(tag="again", actor_id=None, subject=None)
        insert_now(s, [again])  # SQLite: first's id again
        assert s.get(AuditEvent, again.id) is again
        s.commit()
    with Session(engine) as s:
        assert [e.tag for e in s.exec(select(AuditEvent)).all()] == ["again"]
        assert s.exec(select(Generation)).all() == []


def test_a_savepoint_rolled_back_takes_its_rows_out_of_the_session(engine):
    """Rows inserted now inside a savepoint that rolls back are gone from the database and from the session; the
    outer transaction commits what it did before, and a change to a row of the savepoint is no later UPDATE of a
    missing row."""
    with Session(engine) as s:
        kept = Generation(requester_id="acc_a", prompt="kept", seed=1)
        insert_now(s, [kept])
        nested = s.begin_nested()
        lost = Generation(requester_id="acc_a", prompt="lost", seed=2)
        insert_now(s, [lost])
        nested.rollback()
        assert lost not in s and sa.inspect(lost).transient and kept in s
        lost.state = GenerationState.BLOCKED  # an object the session no longer holds: nothing to write
        kept.state = GenerationState.BLOCKED
        s.commit()
    with Session(engine) as s:
        assert [(g.prompt, g.state) for g in s.exec(select(Generation)).all()] == [("kept", GenerationState.BLOCKED)]

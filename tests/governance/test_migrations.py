"""Migrations: the schema Alembic builds is the one the models describe, on SQLite and PostgreSQL, and a
database made by ``create_all`` before migrations existed is adopted without losing rows."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Iterator

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

from governance import models
from governance.accounts.models import Account, Notification, Role
from governance.characters.models import Character
from governance.columns import utcnow
from governance.db import BASELINE, current_revision, downgrade, init_db, make_engine, migrate
from governance.generations.models import GenerationCharacter
from governance.likenesses.models import Grant, Likeness
from policies.characters import CharacterRule
from policies.consent import LikenessStatus

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
        yield eng
        eng.dispose()
        return
    psycopg = pytest.importorskip("psycopg")
    name = f"cg_mig_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    eng = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        yield eng
    finally:
        eng.dispose()
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drift(engine: sa.Engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)


def test_migrations_build_exactly_the_models_schema(engine):
    """Fails when a model changes without a migration: run ``python -m governance.db revision "..."``."""
    init_db(engine)
    assert current_revision(engine) is not None
    assert _drift(engine) == []
    init_db(engine)  # a second start changes nothing
    with Session(engine) as s:
        assert s.get(models.Counter, "likenesses") is not None


def test_downgrade_to_nothing_and_back(engine):
    migrate(engine)
    downgrade(engine, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert _drift(engine) == []


def test_a_database_made_by_create_all_is_adopted_with_its_rows(engine):
    # what init_db's create_all made before migrations existed: the schema of revision 0001, unversioned
    migrate(engine, BASELINE)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
    with Session(engine) as s:
        s.add(models.Counter(name="likenesses", value=7))
        s.commit()
    init_db(engine)
    assert current_revision(engine) is not None and current_revision(engine) >= BASELINE
    with Session(engine) as s:
        assert s.get(models.Counter, "likenesses").value == 7
    assert _drift(engine) == []


def test_a_failed_migration_leaves_nothing_half_made(engine):
    """Every migration step is one transaction, on SQLite too: a step that fails half-way (here on a
    stray table in its way) leaves no tables behind, and the error names the cause."""
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE TABLE "grant" (x INTEGER)')  # the migration creates "grant" last
    with pytest.raises(sa.exc.SQLAlchemyError, match="grant"):
        migrate(engine)
    assert set(sa.inspect(engine).get_table_names()) == {"grant"}


def _start(url: str, barrier, results) -> None:  # in a child process: what every service start does
    engine = make_engine(url)
    barrier.wait()
    try:
        init_db(engine)
        results.put("ok")
    except Exception as e:  # reported to the test, which shows it
        results.put(f"{type(e).__name__}: {e}"[:300])
    finally:
        engine.dispose()


def test_processes_starting_together_migrate_one_after_the_other(engine):
    """An API process and workers starting at once on a fresh database: one migrates, the others wait
    and find it done (SQLite: the write lock taken up front; PostgreSQL: an advisory lock)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    url = engine.url.render_as_string(hide_password=False)
    for _ in range(2):  # without the lock, a round of 4 collided about every other time
        downgrade(engine, "base")
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        barrier, results = ctx.Barrier(4), ctx.Queue()
        procs = [ctx.Process(target=_start, args=(url, barrier, results)) for _ in range(4)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert outcomes == ["ok"] * 4
        assert _drift(engine) == []


def test_an_existing_log_gets_its_merkle_tree(engine):
    """Revision 0002 builds the Merkle nodes of the entries a log already holds; appends carry on."""
    from governance.log.services import translog
    from provenance import merkle

    migrate(engine, BASELINE)
    prev, hashes = translog.GENESIS, []
    with engine.begin() as conn:
        for i in range(6):
            h = translog._entry_hash(i, f"gen{i}", f"{i:016x}", "aa" * 32, "bb" * 32, prev)
            conn.execute(sa.text('INSERT INTO logentry ("index", generation_id, content_id, video_sha256, '
                                 "manifest_sha256, prev_hash, entry_hash, created_at) VALUES "
                                 "(:i, :g, :c, :v, :m, :p, :h, CURRENT_TIMESTAMP)"),
                         {"i": i, "g": f"gen{i}", "c": f"{i:016x}", "v": "aa" * 32, "m": "bb" * 32, "p": prev, "h": h})
            prev = h
            hashes.append(h)
    init_db(engine)
    with Session(engine) as s:
        head = translog.head(s)
        assert head.size == 6 and translog.verify_tree(s)
        assert head.root_hash == merkle.root_of([merkle.leaf_hash(bytes.fromhex(h)) for h in hashes]).hex()
        translog.append(s, "gen6", "6" * 16, "aa" * 32, "bb" * 32)
        s.commit()
        assert translog.head(s).size == 7 and translog.verify_tree(s)
    downgrade(engine, BASELINE)  # and back: the entries stay, the nodes go
    assert "lognode" not in sa.inspect(engine).get_table_names()


def test_past_generations_get_their_characters(engine):
    """Revision 0003 reads which characters past generations named from the decisions they recorded."""
    migrate(engine, "0002")
    deny = {"decision": "deny", "reason": "...", "rule": "character:ch_a:deny"}
    allow = {"decision": "allow", "reason": "...", "rule": "character:ch_b:allow"}
    other = {"decision": "allow", "reason": "...", "rule": "likeness:approved"}
    with Session(engine) as s:
        s.add(Account(id="acc_1", name="bob", role=Role.CREATOR, token_hash="h"))
        s.flush()
        # the columns generations had at revision 0002 (the model has more now)
        insert = sa.text("INSERT INTO generation (id, requester_id, prompt, seed, likeness_ids, state, reasons, "
                         "decisions, grants_relied, faces_found, created_at, updated_at) VALUES (:id, 'acc_1', 'p', 1, "
                         "'[]', 'REQUESTED', '[]', :decisions, '[]', '[]', :now, :now)")
        for gid, decisions in (("gen_1", [deny, allow]), ("gen_2", [allow, other]), ("gen_3", [other])):
            s.execute(insert, {"id": gid, "decisions": json.dumps(decisions), "now": utcnow()})
        s.commit()
    migrate(engine)
    with Session(engine) as s:
        rows = sorted((r.generation_id, r.character_id, r.allowed) for r in s.exec(select(GenerationCharacter)))
    assert rows == [("gen_1", "ch_a", False), ("gen_1", "ch_b", True), ("gen_2", "ch_b", True)]


def test_downgrading_below_attribution_turns_the_rule_into_deny(engine):
    """Without the credit mechanism, "allowed if credited" is read as "not allowed" (fail closed)."""
    migrate(engine)
    with Session(engine) as s:
        s.add(Account(id="acc_1", name="studio", role=Role.RIGHTS_HOLDER, token_hash="h"))
        s.flush()
        s.add(Character(id="ch_1", owner_id="acc_1", name="Comet", rule=CharacterRule.ATTRIBUTION,
                               attribution="(c) Studio"))
        s.commit()
    downgrade(engine, "0003")
    with engine.connect() as conn:
        assert conn.execute(sa.text('SELECT rule FROM "character"')).scalar_one() == "DENY"
    migrate(engine)


def test_entry_hash_versions_are_found_again_after_a_downgrade(engine):
    """Revision 0006: entries made before it stay version 1; entries made under it, downgraded and upgraded
    again, are recognised as version 2 by their hash, so the chain still verifies."""
    from governance.log.services import translog

    migrate(engine, "0005")
    old = translog._entry_hash(0, "gen0", "0" * 16, "aa" * 32, "bb" * 32, translog.GENESIS)
    with engine.begin() as conn:
        conn.execute(sa.text('INSERT INTO logentry ("index", generation_id, content_id, video_sha256, manifest_sha256, '
                             "prev_hash, entry_hash, created_at) VALUES (0, 'gen0', :c, :v, :m, :p, :h, "
                             "CURRENT_TIMESTAMP)"),
                     {"c": "0" * 16, "v": "aa" * 32, "m": "bb" * 32, "p": translog.GENESIS, "h": old})
        conn.execute(sa.text("INSERT INTO lognode (level, idx, digest) VALUES (0, 0, :d)"),
                     {"d": translog.merkle.leaf_hash(bytes.fromhex(old)).hex()})
    init_db(engine)
    with Session(engine) as s:
        for i in (1, 2):
            translog.append(s, f"gen{i}", f"{i:016x}", "aa" * 32, "bb" * 32)
        s.commit()
        assert [e.hash_version for e in translog.all_entries(s)] == [1, 2, 2]
    downgrade(engine, "0005")
    assert "loghead" not in sa.inspect(engine).get_table_names()
    migrate(engine)
    with Session(engine) as s:
        entries = list(translog.all_entries(s))
        assert [e.hash_version for e in entries] == [1, 2, 2] and translog.verify_chain(entries)


def test_existing_likenesses_become_photo_enrollments_and_their_owners_are_told(engine):
    """Revision 0007: likenesses enrolled before live verification existed are protective ``photo`` ones; each
    owner gets one notification saying how to verify live; mode and grants are kept, dormant."""
    migrate(engine, "0006")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO account (id, name, role, token_hash, created_at) VALUES "
                             "('acc_1', 'alice', 'CREATOR', 'h1', CURRENT_TIMESTAMP), "
                             "('acc_2', 'bob', 'CREATOR', 'h2', CURRENT_TIMESTAMP)"))
        conn.execute(sa.text("INSERT INTO likeness (id, owner_id, mode, backend, template, embeddings, created_at) "
                             "VALUES ('lk_1', 'acc_1', 'EVERYONE', 'dlib', :t, 1, CURRENT_TIMESTAMP)"), {"t": b"x"})
        conn.execute(sa.text('INSERT INTO "grant" (id, likeness_id, grantee_id, created_at) VALUES '
                             "('gr_1', 'lk_1', 'acc_2', CURRENT_TIMESTAMP)"))
    migrate(engine)
    with Session(engine) as s:
        lk = s.get(Likeness, "lk_1")
        assert (lk.verification.value, lk.status.value, lk.mode.value) == ("photo", "active", "everyone")
        assert lk.identity == {} and lk.figure_id is None and lk.verified_at is None
        [note] = s.exec(select(Notification)).all()
        assert note.account_id == "acc_1" and note.likeness_id == "lk_1" and note.kind == "likeness:verify:needed"
        assert "/v1/likenesses/lk_1/verification" in note.message and "blocks every video" in note.message
        assert s.get(Grant, "gr_1").revoked_at is None
        # a claim under review, then a downgrade: the old rule would let others use it, so it is closed
        lk.status = LikenessStatus.DISPUTED
        s.add(lk)
        s.commit()
    downgrade(engine, "0006")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT mode FROM likeness")).scalar_one() == "ONLY_ME"
        assert conn.execute(sa.text('SELECT revoked_at FROM "grant"')).scalar_one() is not None
        assert conn.execute(sa.text("SELECT count(*) FROM notification")).scalar_one() == 0
    migrate(engine)
    assert _drift(engine) == []


def _old_template(seed: int, *, side: int = 518) -> tuple[bytes, np.ndarray]:
    """A template blob as rows held it before revision 0010: five poses and a side x side reference crop."""
    import io

    rng = np.random.default_rng(seed)
    reference = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, format=np.array("consentgate-template-v1"),
                        embeddings=rng.normal(size=(5, 128)).astype(np.float32), backend=np.array("dlib-resnet-v1"),
                        reference=reference, bins=np.array(["frontal", "left", "right", "up", "down"], dtype="<U7"))
    return buf.getvalue(), reference


def _insert_old_rows(engine: sa.Engine, n: int) -> dict[str, np.ndarray]:
    migrate(engine, "0009")
    refs = {}
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO account (id, name, role, token_hash, created_at) VALUES "
                             "('acc_1', 'ann', 'CREATOR', 'h1', CURRENT_TIMESTAMP)"))
        for i in range(n):
            blob, ref = _old_template(i, side=518 if i == 0 else 64)
            refs[f"lk_{i:03d}"] = ref
            conn.execute(sa.text("INSERT INTO likeness (id, owner_id, mode, backend, template, embeddings, created_at, "
                                 "verification, status, identity) VALUES (:id, 'acc_1', 'APPROVED', 'dlib-resnet-v1', "
                                 ":t, 5, CURRENT_TIMESTAMP, 'LIVE', 'ACTIVE', '{}')"), {"id": f"lk_{i:03d}", "t": blob})
        blob, _ = _old_template(99, side=64)
        conn.execute(sa.text("INSERT INTO figure (id, name, aliases, backend, template, embeddings, created_at) "
                             "VALUES ('fig_1', 'Some Senator', '[]', 'dlib-resnet-v1', :t, 5, CURRENT_TIMESTAMP)"),
                     {"t": blob})
    return refs


def test_0010_moves_reference_images_into_the_encrypted_store_and_back(engine, tmp_path):
    """Issue 12: rows made before 0010 (a 518 x 518 reference crop in every template) keep embeddings only after it
    (<= 16 KB for five poses), their images encrypted in the store bound to the database; downgrade restores them."""
    from detectors.enroll import Template
    from governance import references

    refs = _insert_old_rows(engine, 205)  # more than one batch of 200
    with engine.connect() as conn:
        before = conn.execute(sa.text("SELECT template FROM likeness WHERE id = 'lk_000'")).scalar_one()
    assert len(before) > 500_000  # what a row cost before
    store = references.ReferenceStore(tmp_path / "references", tmp_path / "keys" / "reference.key")
    references.bind(engine, store)
    init_db(engine)
    assert _drift(engine) == []
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, template FROM likeness")).all())
        fig = conn.execute(sa.text("SELECT template FROM figure")).scalar_one()
    assert len(rows) == 205 and max(len(bytes(b)) for b in rows.values()) <= 16 * 1024
    for lid, blob in rows.items():
        t = Template.from_bytes(bytes(blob))
        assert t.reference is None and t.embeddings.shape == (5, 128) and len(t.bins) == 5
        assert np.array_equal(store.get(lid), refs[lid])
    assert Template.from_bytes(bytes(fig)).reference is None
    assert (tmp_path / "keys" / "reference.key").stat().st_mode & 0o777 == 0o600
    assert (store.path("lk_000").stat().st_mode & 0o777) == 0o600
    assert refs["lk_000"].tobytes()[:64] not in store.path("lk_000").read_bytes()  # encrypted, not just packed
    names = {ix["name"] for t in ("generation", "grant") for ix in sa.inspect(engine).get_indexes(t)}
    assert {"ix_generation_quota", "ix_grant_likeness_grantee"} <= names  # 0015 made 0010's quota index covering

    downgrade(engine, "0009")
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.text("SELECT id, template FROM likeness")).all())
    with np.load(io.BytesIO(bytes(rows["lk_000"]))) as npz:
        assert np.array_equal(npz["reference"], refs["lk_000"])


def test_0010_without_a_store_refuses_and_moves_nothing(engine):
    """A bare engine (no data dir's store bound) cannot move the images: the step fails whole, rows untouched."""
    _insert_old_rows(engine, 3)
    with pytest.raises(Exception, match="consentgate init"):
        migrate(engine)
    assert current_revision(engine) == "0009"
    with engine.connect() as conn:
        blob = conn.execute(sa.text("SELECT template FROM likeness WHERE id = 'lk_000'")).scalar_one()
    with np.load(io.BytesIO(bytes(blob))) as npz:
        assert "reference" in npz.files


def _quota_plan(engine: sa.Engine) -> str:
    """How the database runs the daily quota's count (SQLite's query plan, PostgreSQL's EXPLAIN), as one string."""
    from governance.generations.services.generations import _COUNTS_SINCE

    compiled = _COUNTS_SINCE.compile(engine, compile_kwargs={"literal_binds": False})
    params = {"account_id": "acc_x", "since": utcnow()}
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(compiled.construct_params(params)
                                                                             [k] for k in compiled.positiontup))
            return " | ".join(str(r[-1]) for r in rows)
        conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table: the planner would rather scan it
        literal = _COUNTS_SINCE.params(**params).compile(engine, compile_kwargs={"literal_binds": True})
        return " | ".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {literal}"))


def test_0015_makes_the_quota_count_read_its_index_alone_and_downgrades(engine):
    """Head: the quota's count (requests and precheck refusals of a day) is answered from ix_generation_quota
    alone, a covering index, and requester_id has no index of its own; 0013 restores both indexes it replaced,
    and the upgrade again the covering one."""
    init_db(engine)
    names = lambda: {ix["name"] for ix in sa.inspect(engine).get_indexes("generation")}  # noqa: E731
    assert "ix_generation_quota" in names() and not {"ix_generation_requester_created",
                                                     "ix_generation_requester_id"} & names()
    plan = _quota_plan(engine)
    assert "ix_generation_quota" in plan, plan
    assert ("COVERING INDEX" if engine.dialect.name == "sqlite" else "Index Only Scan") in plan, plan
    downgrade(engine, "0013")
    assert {"ix_generation_requester_created", "ix_generation_requester_id"} <= names()
    assert "ix_generation_quota" not in names()
    migrate(engine)
    assert "ix_generation_quota" in names() and _drift(engine) == []

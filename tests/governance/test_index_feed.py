"""The in-memory likeness and fingerprint indexes follow the database through the change feed (``indexchange``):
after the first load a sync reads the changes since the version it applied, so its cost grows with the changes,
not with what is enrolled. Two runtimes on one database stand for two processes; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlmodel import Session, select

from governance import metrics
from governance.accounts.models import Account, Role
from governance.bookkeeping import IndexChange
from governance.config import Settings
from governance.container import Runtime
from governance.db import changes_since, counter, init_db, make_engine, unit_of_work
from governance.generations.models import Generation
from governance.likenesses.models import Likeness
from governance.verification.models import ContentFingerprint


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/feed.db"
    else:
        yield request.getfixturevalue("pg_url")


def _template(seed: int) -> bytes:
    from detectors.enroll import Template

    emb = np.random.default_rng(seed).normal(size=(2, 128)).astype(np.float32)
    return Template(emb / np.linalg.norm(emb, axis=1, keepdims=True), "dlib-resnet-v1",
                    np.zeros((8, 8, 3), np.uint8)).to_bytes()


def _applied(kind: str) -> float:
    return metrics.INDEX_CHANGES.labels(index=kind)._value.get()


def _enroll(engine, n: int) -> None:
    """An owner and ``n`` likenesses of theirs, committed."""
    with unit_of_work(engine) as s:
        s.add(Account(id="acc", name="owner", role=Role.CREATOR, token_hash="h"))
        for i in range(n):
            s.add(Likeness(id=f"lk_{i:016x}", owner_id="acc", backend="dlib-resnet-v1", template=_template(i),
                           embeddings=2))


def test_likeness_index_follows_the_change_feed(url, tmp_path):
    engine = make_engine(url)
    init_db(engine)
    settings = Settings(data_dir=tmp_path / "var", database_url=url)
    a, b = Runtime(settings, engine), Runtime(settings, engine)
    try:
        _enroll(engine, 20)
        with Session(engine) as s:
            assert len(b.indexes.sync_index(s)) == 20  # the first sync loads everything once
            version = counter(s, "likenesses")
        # another process enrolls one, re-enrolls one (a new template) and deletes one
        with unit_of_work(engine) as s:
            s.add(Likeness(id="lk_new0000000000000", owner_id="acc", backend="dlib-resnet-v1", template=_template(99),
                           embeddings=2))
            changed = s.get(Likeness, f"lk_{3:016x}")
            changed.template = _template(1003)
            s.add(changed)
            s.delete(s.get(Likeness, f"lk_{5:016x}"))
        with Session(engine) as s:
            assert sorted(changes_since(s, "likenesses", version, counter(s, "likenesses"))) == sorted(
                ["lk_new0000000000000", f"lk_{3:016x}", f"lk_{5:016x}"])
            before = _applied("likenesses")
            index = b.indexes.sync_index(s)
            assert _applied("likenesses") - before == 3  # three rows read, not twenty
            assert len(index) == 20 and f"lk_{5:016x}" not in index and "lk_new0000000000000" in index
            assert b.indexes.lag(s) == {"likenesses": 0, "fingerprints": -1}
            # the re-enrolled likeness is found by its new template
            from detectors.enroll import Template

            new = Template.from_bytes(s.get(Likeness, f"lk_{3:016x}").template).embeddings[0]
            assert index.nearest(new, k=1)[0][0] == f"lk_{3:016x}"
            before = _applied("likenesses")
            b.indexes.sync_index(s)  # nothing changed: nothing read
            assert _applied("likenesses") == before
            # the first runtime, never synced, loads the current set
            assert set(a.indexes.sync_index(s).ids()) == set(s.exec(select(Likeness.id)).all())
    finally:
        a.close()
        b.close()


def test_fingerprint_index_follows_the_change_feed(url, tmp_path):
    from media.video import Clip
    from provenance.fingerprint import fingerprint_clip

    engine = make_engine(url)
    init_db(engine)
    rt = Runtime(Settings(data_dir=tmp_path / "var", database_url=url), engine)
    rng = np.random.default_rng(0)

    def release(i: int) -> None:
        with unit_of_work(engine) as s:
            if i == 0:
                s.add(Account(id="acc", name="a", role=Role.CREATOR, token_hash="h"))
            s.add(Generation(id=f"gen{i}", requester_id="acc", prompt="p", seed=i, content_id=f"{i:016x}"))
            s.flush()
            clip = Clip(rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8), 24.0)
            s.add(ContentFingerprint(generation_id=f"gen{i}", content_id=f"{i:016x}",
                                     data=fingerprint_clip(clip, query_views=False).to_bytes()))

    try:
        release(0)
        with Session(engine) as s:
            assert len(rt.indexes.sync_fingerprints(s)) == 1
        release(1)
        release(2)
        with Session(engine) as s:
            before = _applied("fingerprints")
            assert len(rt.indexes.sync_fingerprints(s)) == 3
            assert _applied("fingerprints") - before == 2
            assert [r.key for r in s.exec(select(IndexChange).where(IndexChange.kind == "fingerprints")
                                          .order_by(IndexChange.version))] == ["gen0", "gen1", "gen2"]
    finally:
        rt.close()


def test_a_runtime_without_metrics_syncs_and_records_nothing(tmp_path):
    """``Runtime(..., metrics=False)`` (``consentgate verify``): its indexes follow the feed as a server's do, and no
    sync reaches the process's metrics; a runtime with them (the default) records each sync."""
    url = f"sqlite:///{tmp_path}/feed.db"
    engine = make_engine(url)
    init_db(engine)
    settings = Settings(data_dir=tmp_path / "var", database_url=url)
    quiet, served = Runtime(settings, engine, metrics=False), Runtime(settings, engine)
    try:
        _enroll(engine, 3)
        with Session(engine) as s:
            before = _applied("likenesses")
            assert len(quiet.indexes.sync_index(s)) == 3
            assert _applied("likenesses") == before
            assert len(served.indexes.sync_index(s)) == 3
            assert _applied("likenesses") - before == 3
    finally:
        quiet.close()
        served.close()


def test_concurrent_writers_get_versions_in_commit_order(pg_url, tmp_path):
    """Two transactions enroll at once on PostgreSQL: the second waits on the feed's counter row until the first
    commits, so no reader can see version N+1 while N is still to come."""
    import threading

    engine = make_engine(pg_url)
    init_db(engine)
    with unit_of_work(engine) as s:
        s.add(Account(id="acc", name="owner", role=Role.CREATOR, token_hash="h"))
    first = Session(engine)
    first.add(Likeness(id="lk_a000000000000000", owner_id="acc", backend="dlib-resnet-v1", template=_template(1),
                       embeddings=2))
    first.flush()  # holds the counter row
    done = threading.Event()

    def second() -> None:
        with unit_of_work(engine) as s:
            s.add(Likeness(id="lk_b000000000000000", owner_id="acc", backend="dlib-resnet-v1",
                           template=_template(2), embeddings=2))
        done.set()

    t = threading.Thread(target=second)
    t.start()
    assert not done.wait(1.0)  # waiting for the first to commit
    first.commit()
    first.close()
    t.join(10)
    with Session(engine) as s:
        rows = s.exec(select(IndexChange).where(IndexChange.kind == "likenesses").order_by(IndexChange.version)).all()
        assert [r.key for r in rows] == ["lk_a000000000000000", "lk_b000000000000000"]
    engine.dispose()

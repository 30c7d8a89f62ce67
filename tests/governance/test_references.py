"""The encrypted store of likenesses' reference images (issue 12): what it refuses and what a unit of work undoes."""

from __future__ import annotations

import numpy as np
import pytest
from sqlmodel import Session

from governance import references
from governance.db import init_db, make_engine
from governance.references import ReferenceStore, ReferenceUnavailable


@pytest.fixture
def store(tmp_path) -> ReferenceStore:
    return ReferenceStore(tmp_path / "references", tmp_path / "keys" / "reference.key")


def _face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (40, 30, 3), dtype=np.uint8)


def test_round_trip_is_exact_and_private(store, tmp_path):
    store.put("lk_a", _face())
    assert np.array_equal(store.get("lk_a"), _face())
    assert store.path("lk_a").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "references").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "keys" / "reference.key").stat().st_mode & 0o777 == 0o600
    assert "hidden" in repr(store) and (tmp_path / "keys" / "reference.key").read_bytes().hex() not in repr(store)
    store.put("lk_a", _face(1))  # replaced atomically
    assert np.array_equal(store.get("lk_a"), _face(1))
    assert sorted(p.name for p in (tmp_path / "references").iterdir()) == ["lk_a.ref"]


def test_a_file_moved_altered_or_read_with_another_key_is_refused(store, tmp_path):
    store.put("lk_a", _face())
    blob = store.path("lk_a").read_bytes()
    store.path("lk_b").write_bytes(blob)  # lk_a's image put where lk_b's belongs
    with pytest.raises(ReferenceUnavailable, match="integrity"):
        store.get("lk_b")
    store.path("lk_a").write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(ReferenceUnavailable, match="integrity"):
        store.get("lk_a")
    other = ReferenceStore(tmp_path / "references", tmp_path / "other.key")
    store.path("lk_a").write_bytes(blob)
    with pytest.raises(ReferenceUnavailable, match="integrity"):
        other.get("lk_a")
    store.path("lk_c").write_bytes(b"not one of ours")
    with pytest.raises(ReferenceUnavailable, match="not a ConsentGate reference"):
        store.get("lk_c")
    with pytest.raises(ReferenceUnavailable, match="no reference image"):
        store.get("lk_missing")


@pytest.mark.parametrize("bad", ["../etc/passwd", "", "a/b", "x" * 65])
def test_ids_that_are_not_likeness_ids_are_refused(store, bad):
    with pytest.raises(ReferenceUnavailable, match="not a likeness id"):
        store.put(bad, _face())


def test_bad_images_and_keys_are_refused(store, tmp_path):
    with pytest.raises(ReferenceUnavailable, match="uint8"):
        store.put("lk_a", np.zeros((4, 4), np.uint8))
    (tmp_path / "short.key").write_bytes(b"short")
    with pytest.raises(ReferenceUnavailable, match="32 bytes"):
        ReferenceStore(tmp_path / "r", tmp_path / "short.key").put("lk_a", _face())
    assert not (tmp_path / "r").exists() or list((tmp_path / "r").iterdir()) == []


def test_a_rolled_back_unit_of_work_leaves_no_file_and_restores_a_replaced_one(store, tmp_path):
    from detectors.enroll import Template

    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    init_db(engine)
    references.bind(engine, store)
    t = Template(embeddings=np.ones((1, 128), np.float32), backend="dlib-resnet-v1", reference=_face(2))
    with Session(engine) as s:
        blob = references.keep(s, "lk_new", t)
        assert Template.from_bytes(blob).reference is None and len(blob) < 16 * 1024
        assert store.has("lk_new")
        s.rollback()
    assert not store.has("lk_new")  # the likeness was never stored: neither is its face

    store.put("lk_old", _face(3))
    with Session(engine) as s:
        references.keep(s, "lk_old", t)
        assert np.array_equal(store.get("lk_old"), _face(2))
        s.rollback()
    assert np.array_equal(store.get("lk_old"), _face(3))  # the upgrade rolled back: the old face is back

    with Session(engine) as s:
        references.forget(s, "lk_old")
        s.rollback()
    assert store.has("lk_old")
    with Session(engine) as s:
        references.forget(s, "lk_old")
        s.commit()
    assert not store.has("lk_old")
    engine.dispose()


def test_reference_of_prefers_the_row_and_needs_a_store_otherwise(store, tmp_path):
    from detectors.enroll import Template

    engine = make_engine(f"sqlite:///{tmp_path / 'bare.sqlite'}")
    t = Template(embeddings=np.ones((1, 8), np.float32), backend="b", reference=None)
    with Session(engine) as s:
        with pytest.raises(ReferenceUnavailable, match="not bound"):
            references.reference_of(s, "lk_a", t)
        old = Template(embeddings=np.ones((1, 8), np.float32), backend="b", reference=_face())
        assert np.array_equal(references.reference_of(s, "lk_a", old), _face())
    engine.dispose()

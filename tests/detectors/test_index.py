"""The likeness index, with synthetic embeddings (no backend needed)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from detectors.enroll import Template
from detectors.errors import DetectorError
from detectors.index import LikenessIndex

REF = np.zeros((8, 8, 3), np.uint8)


def tpl(*rows, backend="dlib-resnet-v1") -> Template:
    return Template(np.array(rows, np.float32), backend, REF)


def test_nearest_is_per_likeness_and_ascending():
    index = LikenessIndex(dim=2)
    index.add("a", tpl([0, 0]))
    index.add("b", tpl([5, 0], [1, 0]))  # the closer of b's embeddings counts
    index.add("c", tpl([0, 3]))
    assert len(index) == 3 and "b" in index and "z" not in index
    got = index.nearest(np.array([0.9, 0], np.float32), k=3)
    assert [i for i, _ in got] == ["b", "a", "c"]
    assert [d for _, d in got] == pytest.approx([0.1, 0.9, np.hypot(0.9, 3)], abs=1e-5)
    assert [i for i, _ in index.nearest(np.array([0.9, 0], np.float32), k=1)] == ["b"]
    assert index.within(np.array([0.9, 0], np.float32), 1.0) == [("b", pytest.approx(0.1, abs=1e-5)),
                                                                 ("a", pytest.approx(0.9, abs=1e-5))]


def test_add_replaces_and_remove_forgets():
    index = LikenessIndex(dim=2)
    index.add("a", tpl([0, 0]))
    index.add("a", tpl([10, 10]))
    assert len(index) == 1
    assert index.nearest(np.array([10, 10], np.float32)) == [("a", pytest.approx(0.0))]
    index.remove("a")
    index.remove("never-added")
    assert len(index) == 0 and "a" not in index
    assert index.nearest(np.zeros(2, np.float32)) == []


def test_distance_matrix_matches_brute_force():
    rng = np.random.default_rng(0)
    index = LikenessIndex()
    data = {f"p{i}": rng.normal(0, 0.3, (int(rng.integers(1, 4)), 128)).astype(np.float32) for i in range(50)}
    for key, rows in data.items():
        index.add(key, Template(rows, "dlib-resnet-v1", REF))
    queries = rng.normal(0, 0.3, (5, 128)).astype(np.float32)
    ids, dist = index.distance_matrix(queries)
    for q, row in zip(queries, dist, strict=True):
        expected = [np.linalg.norm(data[i] - q, axis=1).min() for i in ids]
        np.testing.assert_allclose(row, expected, rtol=1e-4)
        assert index.nearest(q, k=1)[0][0] == ids[int(np.argmin(expected))]


def test_rejects_wrong_dimension_backend_and_ids():
    index = LikenessIndex(dim=2)
    with pytest.raises(DetectorError):
        index.add("a", tpl([0, 0, 0]))
    with pytest.raises(DetectorError):
        index.add("", tpl([0, 0]))
    index.add("a", tpl([0, 0]))
    with pytest.raises(DetectorError, match="cannot add one from"):
        index.add("b", tpl([0, 0], backend="insightface-arcface"))
    index.add("a", tpl([0, 0], backend="insightface-arcface"))  # replacing the only one is allowed
    assert index.backend == "insightface-arcface"
    with pytest.raises(DetectorError):
        index.nearest(np.zeros(3, np.float32))
    with pytest.raises(DetectorError):
        index.nearest(np.zeros(2, np.float32), k=0)


def test_concurrent_adds_removes_and_searches():
    index = LikenessIndex(dim=8)
    rng = np.random.default_rng(1)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(200):
                index.add(f"w{n}-{i % 10}", tpl(*rng.normal(size=(2, 8))))
                if i % 3 == 0:
                    index.remove(f"w{n}-{(i + 5) % 10}")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def reader() -> None:
        try:
            for _ in range(300):
                got = index.nearest(np.zeros(8, np.float32), k=5)
                assert [d for _, d in got] == sorted(d for _, d in got)
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)] + [
        threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert 0 < len(index) <= 30


def unit(rng, n, dim=32):
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_faiss_search_above_the_exact_limit_agrees_with_exact_search():
    rng = np.random.default_rng(3)
    data = unit(rng, 3000)
    ids = [f"p{i // 2}" for i in range(3000)]  # two embeddings per likeness
    big = LikenessIndex(dim=32, exact_limit=1000)
    exact = LikenessIndex(dim=32, exact_limit=10**9)
    big.add_embeddings(ids, data, "dlib-resnet-v1")
    exact.add_embeddings(ids, data, "dlib-resnet-v1")
    assert big.search_kind == "faiss-ivf" and exact.search_kind == "exact" and len(big) == 1500
    queries = data[::50] + unit(rng, 60) * 0.1
    got, want = big.search(queries, k=1), exact.search(queries, k=1)
    assert [g[0][0] for g in got] == [w[0][0] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g[0][1] == pytest.approx(w[0][1], abs=1e-5)  # distances are exact, not quantised
    # enroll and delete keep FAISS in step
    big.add("newcomer", tpl(*(queries[0:1] + 0.01)))
    assert big.nearest(queries[0], k=1)[0][0] == "newcomer"
    big.remove("newcomer")
    big.remove(ids[0])
    assert big.nearest(queries[0], k=1)[0][0] not in ("newcomer", ids[0])
    assert big.within(queries[0], 0.2) == []
    # deleting most of it falls back to exact search and compacts the rows
    for i in range(1, 1200):
        big.remove(f"p{i}")
    assert big.search_kind == "exact" and len(big) == 300 and big.embeddings_count == 600
    assert big.nearest(data[2999], k=1) == [("p1499", pytest.approx(0.0, abs=1e-3))]


def test_add_embeddings_validates_its_input():
    index = LikenessIndex(dim=2)
    with pytest.raises(DetectorError, match="consecutive"):
        index.add_embeddings(["a", "b", "a"], np.zeros((3, 2), np.float32), "x")
    with pytest.raises(DetectorError, match="ids for"):
        index.add_embeddings(["a"], np.zeros((3, 2), np.float32), "x")
    with pytest.raises(DetectorError):
        index.add_embeddings(["a"], np.full((1, 2), np.nan, np.float32), "x")
    index.add_embeddings(["a", "a", "b"], np.array([[0, 0], [1, 1], [5, 5]], np.float32), "x")
    assert index.ids() == ("a", "b") and index.embeddings_count == 3
    assert index.search(np.array([[1, 1], [4, 4]], np.float32), k=2) == [
        [("a", pytest.approx(0.0)), ("b", pytest.approx(np.hypot(4, 4)))],
        [("b", pytest.approx(np.hypot(1, 1))), ("a", pytest.approx(np.hypot(3, 3)))]]

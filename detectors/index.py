"""The likeness index: nearest-likeness search over every enrolled template.

The distance from an embedding to a likeness is the smallest euclidean distance to any of that
likeness's template embeddings. Small indexes are searched exactly with numpy; once the index holds
more than ``exact_limit`` embeddings, a FAISS inverted-file index (IVF, 4-bit product-quantised
fast-scan codes) proposes candidates and every reported distance is recomputed exactly from the float32 rows, so a
threshold means the same at any size. Enrolling and deleting update both incrementally::

    >>> import numpy as np
    >>> from detectors.template import Template
    >>> from detectors.index import LikenessIndex
    >>> ref = np.zeros((8, 8, 3), np.uint8)
    >>> index = LikenessIndex(dim=2)
    >>> index.add("alice", Template(np.array([[0.0, 0.0]], np.float32), "test", ref))
    >>> index.add("bob", Template(np.array([[1.0, 0.0], [0.0, 3.0]], np.float32), "test", ref))
    >>> [(i, round(d, 3)) for i, d in index.nearest(np.array([0.9, 0.0], np.float32))]
    [('bob', 0.1), ('alice', 0.9)]
    >>> [[(i, round(d, 3)) for i, d in hits] for hits in index.search(
    ...     np.array([[0.9, 0.0], [9.0, 9.0]], np.float32), k=1, threshold=0.5)]
    [[('bob', 0.1)], []]

Measured on 2 cores (``python -m bench faces``): see ``docs/face-matching.md``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from detectors.errors import DetectorError

if TYPE_CHECKING:
    from detectors.template import Template

__all__ = ["EXACT_LIMIT", "LikenessIndex"]

#: Above this many embedding values (rows x dim: 20k x 128, 5k x 512) the index searches through FAISS
#: instead of exactly; exact search reads every row per query and is memory-bound (~6 ms at 100k x 128).
EXACT_LIMIT: Final = 2_560_000
_MAX_NLIST: Final = 1024  # IVF lists; training cost grows with the square of this
_TRAIN_PER_LIST: Final = 40
_RETRAIN_GROWTH: Final = 4.0  # retrain the IVF when the index has grown this much since training


class _Ivf:
    """FAISS IVF over the index's rows, keyed by row number; only proposes candidates. Product-quantised
    with 4-bit fast-scan codes (dim / 2 bytes a row) when the dimension allows, else 8-bit scalar codes."""

    def __init__(self, matrix: np.ndarray, rows: np.ndarray, dim: int, seed: int = 0) -> None:
        try:
            import faiss
        except ImportError as e:  # pragma: no cover - faiss-cpu is a declared dependency of large indexes
            raise DetectorError("an index this large needs faiss (pip install faiss-cpu)") from e
        n = len(rows)
        self.nlist = int(min(_MAX_NLIST, max(16, math.isqrt(n))))
        self.nprobe = max(16, self.nlist // 32)
        self.trained_on = n
        quantizer = faiss.IndexFlatL2(dim)
        index: Any
        if dim % 8 == 0:
            index = faiss.IndexIVFPQFastScan(quantizer, dim, self.nlist, dim // 8, 4)
            self.fast_scan = True
        else:
            index = faiss.IndexIVFScalarQuantizer(quantizer, dim, self.nlist, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_L2)
            index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # O(1) removal
            self.fast_scan = False
        rng = np.random.default_rng(seed)
        sample = rows if n <= self.nlist * _TRAIN_PER_LIST else rng.choice(rows, self.nlist * _TRAIN_PER_LIST,
                                                                              replace=False)
        index.cp.niter = 10
        index.cp.max_points_per_centroid = _TRAIN_PER_LIST
        self._faiss = faiss
        self._threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(self._threads)  # all cores to train and bulk-add ...
        index.train(np.ascontiguousarray(matrix[np.sort(sample)]))
        self._quantizer = quantizer  # the IVF borrows it
        self.index = index
        self.add(matrix, rows)

    def add(self, matrix: np.ndarray, rows: np.ndarray) -> None:
        # ... and one for small adds and single queries: OpenMP's spinning threads only add latency there,
        # a lot of it on a busy machine
        self._faiss.omp_set_num_threads(self._threads if len(rows) > 10_000 else 1)
        for start in range(0, len(rows), 200_000):
            chunk = rows[start:start + 200_000]
            self.index.add_with_ids(np.ascontiguousarray(matrix[chunk]), chunk.astype(np.int64))
        self._faiss.omp_set_num_threads(1)

    def remove(self, rows: np.ndarray) -> None:
        if len(rows):
            self.index.remove_ids(self._faiss.IDSelectorBatch(np.ascontiguousarray(rows, dtype=np.int64)))

    def candidates(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(q, k) candidate row numbers (-1 where fewer were found)."""
        self.index.nprobe = self.nprobe
        _, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return np.asarray(rows)


class LikenessIndex:
    """Enrolled likenesses by id; exact or FAISS-backed search; safe to share between threads.

    All templates must come from one backend (embeddings of different models are not comparable):
    the first template added fixes :attr:`backend` until the index is empty again.
    """

    def __init__(self, dim: int = 128, *, exact_limit: int | None = None) -> None:
        if dim < 1:
            raise DetectorError(f"dim must be >= 1, got {dim}")
        if exact_limit is not None and exact_limit < 0:
            raise DetectorError(f"exact_limit must be >= 0, got {exact_limit}")
        self.dim = dim
        #: Above this many embeddings (rows) search goes through FAISS (default: EXACT_LIMIT / dim).
        self.exact_limit = exact_limit if exact_limit is not None else EXACT_LIMIT // dim
        self._lock = threading.RLock()
        self._backend: str | None = None
        self._reset()

    def _reset(self) -> None:
        self._matrix = np.zeros((0, self.dim), np.float32)
        self._sq = np.zeros(0, np.float32)
        self._owner = np.zeros(0, np.int64)  # row -> slot (-1: deleted row)
        self._bin = np.zeros(0, np.int8)  # row -> pose bin (index into POSE_BINS; unbinned rows are frontal)
        self._has = np.zeros(0, np.int16)  # row -> bit mask of the bins its likeness's rows hold
        self._n = 0
        self._live_rows = 0
        self._slot_of: dict[str, int] = {}
        self._ids: list[str | None] = []  # slot -> likeness id (None: deleted)
        self._rows_of: list[tuple[int, int]] = []  # slot -> (first row, row count)
        self._bins_of: list[int] = []  # slot -> bit mask of the pose bins its rows hold
        self._max_rows = 1
        self._ivf: _Ivf | None = None

    def __repr__(self) -> str:
        return (f"LikenessIndex(dim={self.dim}, likenesses={len(self)}, embeddings={self._live_rows}, "
                f"search={self.search_kind!r}, backend={self._backend!r})")

    @property
    def backend(self) -> str | None:
        """The backend name of the templates in the index (``None`` while it is empty)."""
        return self._backend

    @property
    def search_kind(self) -> str:
        """``"exact"`` or ``"faiss-ivf"``: how :meth:`search` currently finds candidates."""
        return "exact" if self._ivf is None else "faiss-ivf"

    @property
    def embeddings_count(self) -> int:
        """How many template embeddings (rows) the index holds."""
        return self._live_rows

    # -- changes --------------------------------------------------------------------------------------------
    def add(self, likeness_id: str, template: Template) -> None:
        """Index ``template`` under ``likeness_id``, replacing any template already there; its rows keep
        their pose bins (``Template.bins``; rows of a template without bins count as frontal)."""
        emb = template.embeddings
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise DetectorError(f"expected {self.dim}-d embeddings, got a template of shape {emb.shape}")
        self.add_embeddings([likeness_id] * len(emb), emb, template.backend, bins=template.bins or None)

    def add_embeddings(self, likeness_ids: Sequence[str], embeddings: np.ndarray, backend: str,
                       bins: Sequence[str] | None = None) -> None:
        """Bulk add: row ``i`` of ``embeddings`` belongs to ``likeness_ids[i]`` (and, with ``bins``, was
        taken in head pose ``bins[i]``, one of :data:`~detectors.template.POSE_BINS`; default frontal);
        each likeness's rows must be consecutive and form its whole template (an id already indexed is
        replaced)."""
        from detectors.template import POSE_BINS

        emb = np.asarray(embeddings, dtype=np.float32)
        if bins is not None and (len(bins) != len(emb) or not set(bins) <= set(POSE_BINS)):
            raise DetectorError(f"bins must name one of {', '.join(POSE_BINS)} for each of the {len(emb)} rows")
        codes = np.array([POSE_BINS.index(b) for b in bins] if bins is not None else np.zeros(len(emb)), np.int8)
        if emb.ndim != 2 or emb.shape[1] != self.dim or not np.all(np.isfinite(emb)):
            raise DetectorError(f"expected finite {self.dim}-d embeddings, got shape {emb.shape}")
        if len(likeness_ids) != len(emb):
            raise DetectorError(f"{len(likeness_ids)} ids for {len(emb)} embeddings")
        if not isinstance(backend, str) or not backend:
            raise DetectorError(f"a backend name is required, got {backend!r}")
        groups: list[tuple[str, int, int]] = []
        for row, lid in enumerate(likeness_ids):
            if groups and groups[-1][0] == lid:
                groups[-1] = (lid, groups[-1][1], row + 1)
                continue
            if not isinstance(lid, str) or not lid:
                raise DetectorError(f"a likeness id must be a non-empty string, got {lid!r}")
            groups.append((lid, row, row + 1))
        if len({g[0] for g in groups}) != len(groups):
            raise DetectorError("each likeness's embeddings must be consecutive")
        with self._lock:
            staying = len(self._slot_of) - sum(1 for g in groups if g[0] in self._slot_of)
            if staying and self._backend != backend:
                raise DetectorError(f"the index holds {self._backend!r} templates; cannot add one from {backend!r}")
            for lid, _, _ in groups:
                self._drop(lid)
            first = self._grow(emb, codes)
            for lid, start, stop in groups:
                slot = len(self._ids)
                self._ids.append(lid)
                self._slot_of[lid] = slot
                self._rows_of.append((first + start, stop - start))
                self._bins_of.append(int(np.bitwise_or.reduce(1 << codes[start:stop].astype(np.int64))))
                self._has[first + start:first + stop] = self._bins_of[-1]
                self._owner[first + start:first + stop] = slot
                self._max_rows = max(self._max_rows, stop - start)
            self._live_rows += len(emb)
            self._backend = backend
            self._after_change(np.arange(first, first + len(emb)))

    def remove(self, likeness_id: str) -> None:
        """Drop ``likeness_id``; unknown ids are ignored."""
        with self._lock:
            if likeness_id not in self._slot_of:
                return
            self._drop(likeness_id)
            if not self._slot_of:
                self._backend = None
                self._reset()
                return
            self._after_change(np.zeros(0, np.int64))

    def _drop(self, likeness_id: str) -> None:
        slot = self._slot_of.pop(likeness_id, None)
        if slot is None:
            return
        start, count = self._rows_of[slot]
        self._owner[start:start + count] = -1
        self._ids[slot] = None
        self._live_rows -= count
        if self._ivf is not None:
            self._ivf.remove(np.arange(start, start + count))

    def _grow(self, emb: np.ndarray, codes: np.ndarray) -> int:
        need = self._n + len(emb)
        if need > len(self._matrix):
            cap = max(need, int(len(self._matrix) * 1.5), 64)
            for name, fill in (("_matrix", 0.0), ("_sq", 0.0), ("_owner", -1), ("_bin", 0), ("_has", 0)):
                old = getattr(self, name)
                new = np.full((cap, *old.shape[1:]), fill, old.dtype)
                new[:self._n] = old[:self._n]
                setattr(self, name, new)
        first = self._n
        self._matrix[first:need] = emb
        self._bin[first:need] = codes
        self._sq[first:need] = np.einsum("ij,ij->i", emb, emb)
        self._n = need
        return first

    def _after_change(self, new_rows: np.ndarray) -> None:
        dead = self._n - self._live_rows
        if dead > max(1024, self._live_rows):
            self._compact()
            return
        if self._live_rows <= self.exact_limit:
            self._ivf = None
        elif self._ivf is None or self._live_rows > self._ivf.trained_on * _RETRAIN_GROWTH:
            self._ivf = _Ivf(self._matrix, np.flatnonzero(self._owner[:self._n] >= 0), self.dim)
        elif len(new_rows):
            self._ivf.add(self._matrix, new_rows)

    def _compact(self) -> None:
        live = [(lid, self._rows_of[slot]) for lid, slot in self._slot_of.items()]
        matrix, codes, backend = self._matrix, self._bin, self._backend
        self._reset()
        self._backend = backend
        if not live:
            return
        ids = [lid for lid, (_, count) in live for _ in range(count)]
        rows = np.concatenate([np.arange(s, s + c) for _, (s, c) in live])
        emb = matrix[rows]
        first = self._grow(emb, codes[rows])
        row = first
        for lid, (_, count) in live:
            slot = len(self._ids)
            self._ids.append(lid)
            self._slot_of[lid] = slot
            self._rows_of.append((row, count))
            self._bins_of.append(int(np.bitwise_or.reduce(1 << self._bin[row:row + count].astype(np.int64))))
            self._has[row:row + count] = self._bins_of[-1]
            self._owner[row:row + count] = slot
            self._max_rows = max(self._max_rows, count)
            row += count
        self._live_rows = len(ids)
        if self._live_rows > self.exact_limit:
            self._ivf = _Ivf(self._matrix, np.arange(self._n), self.dim)

    # -- reads ------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, likeness_id: object) -> bool:
        with self._lock:
            return likeness_id in self._slot_of

    def ids(self) -> tuple[str, ...]:
        """Every indexed likeness id, in the order they were (last) added."""
        with self._lock:
            return tuple(i for i in self._ids if i is not None)

    def _check_queries(self, embeddings: Any) -> np.ndarray:
        q = np.asarray(embeddings, dtype=np.float32)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim or not np.all(np.isfinite(q)):
            raise DetectorError(f"expected finite {self.dim}-d embeddings, got shape {np.shape(embeddings)}")
        return q

    def _exact_rows(self, q: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Distances from ``q`` (q, dim) to ``rows`` (all rows when ``None``); deleted rows are +inf."""
        if rows is None:
            m, sq, owner = self._matrix[:self._n], self._sq[:self._n], self._owner[:self._n]
            d2 = np.einsum("ij,ij->i", q, q)[:, None] + sq[None, :] - 2.0 * (q @ m.T)
        else:
            m, sq, owner = self._matrix[rows], self._sq[rows], self._owner[rows]
            d2 = np.einsum("ij,ij->i", q, q)[:, None] + sq - 2.0 * np.einsum("qd,qkd->qk", q, m)
        d = np.sqrt(np.maximum(d2, 0.0))
        if rows is None:
            d[:, owner < 0] = np.inf
        else:
            d[owner < 0] = np.inf
        return d

    def _allowed(self, rows: np.ndarray, code: int) -> np.ndarray:
        """Which of ``rows`` a probe in pose bin ``code`` is compared with: its likeness's rows of that bin
        when it has any, else its frontal rows when it has any, else all of them."""
        has = self._has[rows].astype(np.int64)
        bins = self._bin[rows]
        return np.where((has >> code) & 1, bins == code, np.where(has & 1, bins == 0, True))

    def compared_bin(self, likeness_id: str, probe_bin: str) -> str | None:
        """The bin of ``likeness_id``'s rows a probe in ``probe_bin`` is compared with (see :meth:`search`):
        ``probe_bin`` itself, ``"frontal"``, or ``None`` (all rows: the likeness has neither); raises
        :class:`DetectorError` for an unknown likeness or bin."""
        from detectors.template import POSE_BINS

        if probe_bin not in POSE_BINS:
            raise DetectorError(f"unknown pose bin {probe_bin!r}; expected one of {', '.join(POSE_BINS)}")
        with self._lock:
            slot = self._slot_of.get(likeness_id)
            if slot is None:
                raise DetectorError(f"likeness {likeness_id!r} is not in the index")
            has = self._bins_of[slot]
        if has >> POSE_BINS.index(probe_bin) & 1:
            return probe_bin
        return "frontal" if has & 1 else None

    def search(self, queries: np.ndarray, k: int = 1, threshold: float | None = None,
               pose_bins: Sequence[str] | None = None) -> list[list[tuple[str, float]]]:
        """For each query, up to ``k`` nearest likenesses as ``(likeness_id, distance)``, ascending, one
        entry per likeness; with ``threshold``, only those at distance <= ``threshold``.

        With ``pose_bins`` (one of :data:`~detectors.template.POSE_BINS` per query: the head pose of that
        probe), each query is compared only with the rows of each likeness in its own bin, or, for a
        likeness without that bin, with its frontal (and unbinned) rows (:meth:`compared_bin` says which).

        Exact below ``exact_limit`` embeddings; above it FAISS proposes candidates (an approximate search:
        ``python -m bench faces`` measures its recall) and distances are recomputed exactly."""
        from detectors.template import POSE_BINS

        if k < 1:
            raise DetectorError(f"k must be >= 1, got {k}")
        q = self._check_queries(queries)
        codes: list[int] | None = None
        if pose_bins is not None:
            if len(pose_bins) != len(q) or not set(pose_bins) <= set(POSE_BINS):
                raise DetectorError(f"pose_bins must name one of {', '.join(POSE_BINS)} for each of {len(q)} queries")
            codes = [POSE_BINS.index(b) for b in pose_bins]
        with self._lock:
            if self._live_rows == 0:
                return [[] for _ in range(len(q))]
            want = min(self._n, k * self._max_rows)
            if self._ivf is None:
                d = self._exact_rows(q)
                if codes is not None:
                    every = np.arange(self._n)
                    for qi, code in enumerate(codes):
                        d[qi, ~self._allowed(every, code)] = np.inf
                if want < d.shape[1]:
                    rows = np.argpartition(d, want - 1, axis=1)[:, :want]
                else:
                    rows = np.broadcast_to(np.arange(d.shape[1]), d.shape)
                dist = np.take_along_axis(d, rows, axis=1)
            else:
                rows = self._ivf.candidates(q, max(256, 4 * want))
                dist = self._exact_rows(q, np.maximum(rows, 0))
                dist[rows < 0] = np.inf
                if codes is not None:
                    for qi, code in enumerate(codes):
                        dist[qi, ~self._allowed(np.maximum(rows[qi], 0), code)] = np.inf
            owners = self._owner[np.maximum(rows, 0)]
            out = []
            for qi in range(len(q)):
                order = np.argsort(dist[qi], kind="stable")
                hits: list[tuple[str, float]] = []
                seen: set[int] = set()
                for j in order:
                    dj = float(dist[qi, j])
                    if not math.isfinite(dj) or (threshold is not None and dj > threshold) or len(hits) == k:
                        break
                    slot = int(owners[qi, j])
                    if slot < 0 or slot in seen:
                        continue
                    seen.add(slot)
                    hits.append((str(self._ids[slot]), dj))
                out.append(hits)
            return out

    def nearest(self, embedding: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` nearest likenesses as ``(likeness_id, distance)``, ascending; one entry per likeness."""
        if k < 1:
            raise DetectorError(f"k must be >= 1, got {k}")
        q = self._check_queries(embedding)
        if q.shape[0] != 1:
            raise DetectorError(f"nearest takes one embedding, got {q.shape[0]}")
        return self.search(q, k=k)[0]

    def within(self, embedding: np.ndarray, threshold: float) -> list[tuple[str, float]]:
        """Every likeness at distance <= ``threshold`` from ``embedding``, ascending."""
        q = self._check_queries(embedding)
        if q.shape[0] != 1:
            raise DetectorError(f"within takes one embedding, got {q.shape[0]}")
        return self.search(q, k=max(1, len(self)), threshold=threshold)[0]

    def distance_matrix(self, embeddings: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
        """``(ids, D)`` with ``D[i, j]`` the exact distance from ``embeddings[i]`` to likeness ``ids[j]``,
        computed on one consistent view of the index (costs a full scan: use :meth:`search` at scale)."""
        q = self._check_queries(embeddings)
        with self._lock:
            slots = [s for s, lid in enumerate(self._ids) if lid is not None]
            if not slots:
                return (), np.zeros((len(q), 0), np.float32)
            d = self._exact_rows(q)
            starts = np.array([self._rows_of[s][0] for s in slots], np.intp)
            stops = np.array([self._rows_of[s][0] + self._rows_of[s][1] for s in slots], np.intp)
            bounds = np.stack([starts, stops], axis=1).ravel()
            padded = np.concatenate([d, np.full((len(q), 1), np.inf, d.dtype)], axis=1)
            mins = np.minimum.reduceat(padded, bounds, axis=1)[:, ::2]
            return tuple(str(self._ids[s]) for s in slots), mins.astype(np.float32)

"""The composition root: one process's resources, built once from :class:`~governance.config.Settings` and
handed, each on its own, to what uses it. Only the app factory (:func:`governance.app.create_app`), the CLI
and the views' request plumbing (:func:`governance.web.runtime`) hold a :class:`Runtime`; no service, stage or
library function takes it.

    >>> from governance.config import Settings
    >>> from governance.container import Runtime
    >>> import tempfile  # a fresh data dir: a kept one may hold another revision's schema
    >>> rt = Runtime(Settings().with_overrides({"data_dir": tempfile.mkdtemp(), "worker": "none"}))
    >>> type(rt.keys).__name__, type(rt.detectors).__name__, type(rt.indexes).__name__
    ('Keys', 'Detectors', 'Indexes')
    >>> rt.close()
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from governance import references
from governance.admission import Throttles
from governance.config import Settings
from governance.db import make_engine
from governance.log.services.heads import TreeHeads
from governance.runtime import Detectors, Indexes, Keys, initialise, load_generator, readiness

if TYPE_CHECKING:
    from generator.base import VideoGenerator
    from governance.generations.pipeline import Pipeline
    from governance.identity import IdentityProof


class Runtime:
    """``settings``; the database ``engine``; ``keys`` (signer, trust anchors, watermark keys); ``detectors``
    (face backend, match threshold, character encoder); ``indexes`` (likenesses, fingerprints); ``throttles``
    (slots and rate limits); ``heads`` (the log's signed tree heads); and, built on first use, ``generator``,
    ``identity_proof`` and the job ``pipeline``."""

    def __init__(self, settings: Settings, engine: sa.Engine | None = None, *, metrics: bool = True) -> None:
        """``metrics``: record this process's Prometheus metrics (the server and the workers, which serve them);
        False for a one-shot command (``consentgate verify``), which serves none and so need not load
        prometheus_client."""
        self.settings = settings
        self.engine = engine or make_engine(settings.db_url, sqlite_synchronous=settings.sqlite_synchronous)
        references.bind(self.engine, references.store_for(settings))  # likenesses' face images, encrypted
        self.keys = Keys(settings)
        self.detectors = Detectors(settings)
        on_sync = None
        if metrics:
            from governance.metrics import index_synced

            on_sync = index_synced
        self.indexes = Indexes(self.detectors, on_sync=on_sync)
        self.throttles = Throttles(settings)
        self.heads = TreeHeads(self.keys, self.engine)

    def start(self) -> None:
        """:func:`~governance.runtime.initialise` with this process's keys (the signer is made or checked once),
        then load the operator's identity proof: one that cannot load stops the start (``ConfigError``)."""
        initialise(self.settings, self.keys)
        self.identity_proof  # noqa: B018

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @cached_property
    def generator(self) -> VideoGenerator:
        return load_generator(self.settings)

    @cached_property
    def identity_proof(self) -> IdentityProof:
        """The operator's identity proof (``identity_proof``), or the null one that checks nothing."""
        from governance.identity import load_identity_proof

        return load_identity_proof(self.settings.identity_proof)

    @cached_property
    def pipeline(self) -> Pipeline:
        from governance.generations.pipeline import Pipeline  # the gate and its services: ~120 ms of imports that
        from governance.notices.deadlines import escalate_overdue  # a CLI command without jobs need not pay

        pipeline = Pipeline(self.settings, self.engine, detectors=self.detectors, indexes=self.indexes,
                            keys=self.keys, heads=self.heads, generator=lambda: self.generator)
        pipeline.every_sweep("overdue takedown notices", escalate_overdue)
        return pipeline

    def readiness(self) -> dict[str, str]:
        """Whether this process can serve, check by check (:func:`governance.runtime.readiness`)."""
        return readiness(self.engine, self.pipeline.engine, self.keys)

    def close(self) -> None:
        """Stop the worker, close shared rate limiters and release database connections."""
        if "pipeline" in self.__dict__:
            self.pipeline.stop()
        self.throttles.close()
        self.engine.dispose()

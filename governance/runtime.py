"""The service's backends, wired once from settings: database, face backend and likeness index, generator,
signing material, watermark key, and the job pipeline. Heavy libraries load on first use, not at import."""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, select

from governance.config import Settings
from governance.db import init_db, make_engine
from governance.models import Likeness

if TYPE_CHECKING:
    from detectors.faces import FaceBackend
    from detectors.index import LikenessIndex
    from generator.base import VideoGenerator
    from governance.pipeline import Pipeline
    from provenance.keys import SignerMaterial
    from provenance.watermark import WatermarkKey


def initialise(settings: Settings) -> None:
    """Create var/ folders, the database, the development signing CA and the watermark key. Idempotent."""
    for d in (settings.data_dir, settings.quarantine_dir, settings.videos_dir, settings.keys_dir):
        d.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    try:
        init_db(engine)
    finally:
        engine.dispose()
    from provenance.keys import ensure_dev_ca

    ensure_dev_ca(settings.keys_dir / "c2pa")
    load_or_create_watermark_key(settings.keys_dir / "watermark.key")


def load_or_create_watermark_key(path: Path) -> WatermarkKey:
    from provenance.watermark import WatermarkKey

    if path.exists():
        return WatermarkKey(path.read_bytes())
    key = WatermarkKey.generate()
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.secret)
    try:
        os.link(tmp, path)  # never replace a key another process created meanwhile
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return WatermarkKey(path.read_bytes())


class Runtime:
    def __init__(self, settings: Settings, engine: sa.Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.db_url)
        self._index_lock = threading.Lock()
        self._indexed: set[str] = set()

    def close(self) -> None:
        """Stop the worker and release database connections."""
        if "pipeline" in self.__dict__:
            self.pipeline.stop()
        self.engine.dispose()

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @cached_property
    def face_backend(self) -> FaceBackend:
        if self.settings.face_backend != "dlib":
            from governance.config import ConfigError

            raise ConfigError(f"face backend {self.settings.face_backend!r} is not available; use 'dlib'")
        from detectors.faces import default_backend

        return default_backend()

    @cached_property
    def index(self) -> LikenessIndex:
        from detectors.index import LikenessIndex

        return LikenessIndex(dim=self.face_backend.dim)

    def sync_index(self, session: Session) -> LikenessIndex:
        """Make the in-memory index hold exactly the enrolled likenesses (other processes may have enrolled)."""
        from detectors.enroll import Template

        with self._index_lock:
            index = self.index
            ids = set(session.exec(select(Likeness.id)).all())
            known = self._indexed
            for lid in known - ids:
                index.remove(lid)
            for lid in ids - known:
                lk = session.get(Likeness, lid)
                if lk is not None:
                    index.add(lid, Template.from_bytes(lk.template))
            self._indexed = set(ids)
            return index

    @cached_property
    def generator(self) -> VideoGenerator:
        from generator.base import get_generator

        return get_generator(self.settings.generator)

    @cached_property
    def signer_material(self) -> SignerMaterial:
        from provenance.keys import ensure_dev_ca

        return ensure_dev_ca(self.settings.keys_dir / "c2pa")

    @cached_property
    def watermark_key(self) -> WatermarkKey:
        return load_or_create_watermark_key(self.settings.keys_dir / "watermark.key")

    @cached_property
    def pipeline(self) -> Pipeline:
        from governance.pipeline import Pipeline

        return Pipeline(self)

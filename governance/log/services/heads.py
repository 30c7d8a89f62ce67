"""The transparency log's signed tree heads: :class:`TreeHeads` signs the log's current size and root with the
service's C2PA signer (key file or KMS) when the log has grown, keeps every head it signs
(:func:`governance.log.services.translog.keep_head`), hands out the head already kept for an unchanged log (one
that verifies under today's signing chain) instead of signing it again, and refuses to sign a log that no longer
extends the last head kept."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session

from governance.db import unit_of_work
from governance.errors import Unavailable
from governance.log.services import translog

if TYPE_CHECKING:
    from governance.log.models import LogHead
    from governance.runtime import Keys
    from provenance.treehead import SignedTreeHead


class TreeHeads:
    """Signs heads with ``keys`` and keeps them through ``engine`` (in their own transaction). Thread-safe."""

    def __init__(self, keys: Keys, engine: sa.Engine) -> None:
        self.keys = keys
        self.engine = engine
        self._lock = threading.Lock()
        self._signed: SignedTreeHead | None = None  # the newest, re-signed only when the log grows

    def signed(self, session: Session) -> SignedTreeHead:
        """The log's current size and root, signed. A log that no longer extends the last head kept (entries
        removed or rewritten) gets no new signature, and a signer that fails (a KMS that is down) none either:
        ``Unavailable`` (503) says why; the next call tries again."""
        from provenance.errors import SigningError
        from provenance.treehead import SignedTreeHead

        head = translog.head(session)
        with self._lock:
            cached = self._signed
            if cached is None or (cached.tree_size, cached.root_hash) != (head.size, head.root_hash):
                last = translog.latest_head(session)
                why = translog.departs_from(session, last) if last is not None else None
                if why is not None:
                    raise Unavailable(f"the transparency log's head is not signed: {why} (run 'consentgate log audit')")
                cached = self._kept(last, head.size, head.root_hash) if last is not None else None
                if cached is not None:  # another process (a worker, the CLI, before a restart) signed this log
                    self._signed = cached
                    return cached
                material = self.keys.material
                try:
                    cached = SignedTreeHead.sign(head.size, head.root_hash, self.keys.signer(), material.alg,
                                                 material.cert_chain_pem)
                except SigningError as e:  # a KMS that is down: say so, retry on the next request
                    from governance import metrics

                    metrics.SIGNER_FAILURES.inc()
                    raise Unavailable(f"the transparency log's head cannot be signed now: {e}") from e
                with unit_of_work(self.engine) as s:  # its own transaction: the caller's may only read
                    translog.keep_head(s, cached)
                self._signed = cached
            return cached

    def _kept(self, row: LogHead, size: int, root_hash: str) -> SignedTreeHead | None:
        """The kept head ``row`` when it signs this very log (``size`` entries, ``root_hash``) under today's signing
        chain and its signature holds; None otherwise (a new head is signed). So a process that did not sign the
        head itself (``consentgate verify``, another API process, one restarted) gives the head the service already
        signed for this log, rather than loading the key, signing a head of its own and keeping it."""
        from provenance.errors import SigningError

        if (row.tree_size, row.root_hash) != (size, root_hash):
            return None
        try:
            if row.certificate_chain_pem.encode("ascii") != self.keys.chain_pem:
                return None  # signed before the signing chain was retired: sign under today's
            signed = translog.kept_head(row)
            signed.verify()  # under its own leaf certificate: a row edited in the database is not handed out
        except (SigningError, UnicodeEncodeError):
            return None
        return signed

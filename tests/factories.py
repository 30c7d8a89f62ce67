"""Factories for the rows tests need that no request can make quickly: accounts, likenesses and generations.

Each takes an open session (``unit_of_work(engine)``; the caller's transaction commits or rolls back), fills
in what the test does not care about, and returns the row, flushed so its id can be used at once. Accounts
go through the real service (``create_account``: a hashed token); likenesses carry a real enrollment
template (a random unit embedding, as ``Template.to_bytes`` writes it); a generation is linked to the
likenesses it names or shows, as the gate links them. Usage::

    with unit_of_work(api.rt.engine) as s:
        owner, token = factories.account(s)
        lk = factories.likeness(s, owner.id)
        gen = factories.generation(s, owner.id, named=[lk.id], state=GenerationState.RELEASED)
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlmodel import Session

from detectors.enroll import Template
from governance.accounts.models import Account
from governance.accounts.services import create_account
from governance.columns import utcnow
from governance.generations.models import Generation, GenerationLikeness, GenerationState
from governance.likenesses.models import Likeness
from policies.consent import Verification

_COUNTER = itertools.count()


def account(session: Session, name: str | None = None, role: str = "creator", **fields: Any) -> tuple[Account, str]:
    """A new account (``name`` defaults to a unique ``<role>-<n>``) and its API token."""
    acc, token = create_account(session, name or f"{role.replace('_', '-')}-{next(_COUNTER)}", role)
    for key, value in fields.items():
        setattr(acc, key, value)
    session.add(acc)
    session.flush()
    return acc, token


def template(seed: int | None = None, backend: str = "dlib-resnet-v1") -> Template:
    """An enrollment template of one random unit 128-d embedding (reproducible for a given ``seed``)."""
    emb = np.random.default_rng(next(_COUNTER) if seed is None else seed).normal(size=(1, 128)).astype(np.float32)
    return Template(emb / np.linalg.norm(emb), backend, np.zeros((8, 8, 3), np.uint8))


def likeness(session: Session, owner_id: str, *, verification: Verification = Verification.LIVE,
             seed: int | None = None, **fields: Any) -> Likeness:
    """A likeness of ``owner_id`` with a real template; live by default (able to consent, as if verified), with
    ``verified_at`` set when live. ``fields`` override any column (``mode``, ``status``, ...)."""
    t = template(seed)
    row = Likeness(owner_id=owner_id, backend=t.backend, template=t.to_bytes(), embeddings=1,
                   verification=verification, verified_at=utcnow() if verification == Verification.LIVE else None,
                   **fields)
    session.add(row)
    session.flush()
    return row


def generation(session: Session, requester_id: str, *, named: Iterable[str] = (), found: Iterable[str] = (),
               state: GenerationState = GenerationState.REQUESTED, prompt: str = "a quiet lake", seed: int = 1,
               **fields: Any) -> Generation:
    """A generation requested by ``requester_id``, naming ``named`` and showing ``found`` (linked as the gate
    links them). A released one gets a content id and ``released_at`` unless given."""
    named, found = list(named), list(found)
    if state == GenerationState.RELEASED:
        fields.setdefault("content_id", secrets.token_hex(8))
        fields.setdefault("released_at", utcnow())
    row = Generation(requester_id=requester_id, prompt=prompt, seed=seed, likeness_ids=named, state=state, **fields)
    session.add(row)
    session.flush()
    for lid in dict.fromkeys([*named, *found]):
        session.add(GenerationLikeness(generation_id=row.id, likeness_id=lid, named=lid in named, found=lid in found))
    session.flush()
    return row

"""Database tables (SQLModel). Same code on SQLite (embedded) and PostgreSQL (at scale)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from policies.characters import CharacterRule
from policies.consent import LikenessMode, LikenessStatus, Verification


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime | None) -> str | None:
    """ISO 8601 in UTC; SQLite hands back naive datetimes, which are UTC here by construction."""
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).isoformat()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), **kw)  # type: ignore[call-overload]


def _opt_ts(**kw: Any) -> Any:
    return Field(default=None, sa_type=sa.DateTime(timezone=True), **kw)  # type: ignore[call-overload]


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_type=sa.JSON)  # type: ignore[call-overload]


class Role(StrEnum):
    CREATOR = "creator"
    RIGHTS_HOLDER = "rights_holder"
    REGULATOR = "regulator"
    ADMIN = "admin"


class GenerationState(StrEnum):
    REQUESTED = "requested"
    PRECHECKED = "prechecked"
    GENERATING = "generating"
    SCANNING = "scanning"
    SEALING = "sealing"
    RELEASED = "released"
    BLOCKED = "blocked"
    HELD = "held"  # a face that may be a likeness the requester may not use: waiting for its owner's review

    @property
    def terminal(self) -> bool:
        return self in (GenerationState.RELEASED, GenerationState.BLOCKED)


class Account(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("acc"), primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    role: Role
    token_hash: str = Field(index=True, unique=True, repr=False)
    daily_quota: int | None = None  # None: the service default
    created_at: datetime = _ts()


class Contact(SQLModel, table=True):
    """``owner_id`` lists ``contact_id`` as a contact; mutual when the reverse row exists too."""

    owner_id: str = Field(foreign_key="account.id", primary_key=True)
    contact_id: str = Field(foreign_key="account.id", primary_key=True)
    created_at: datetime = _ts()


class Likeness(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("lk"), primary_key=True)
    owner_id: str = Field(foreign_key="account.id", index=True)
    mode: LikenessMode = LikenessMode.APPROVED
    display_name: str | None = Field(default=None, max_length=120)
    backend: str
    template: bytes = Field(sa_type=sa.LargeBinary, repr=False)  # type: ignore[call-overload]
    embeddings: int = 0
    created_at: datetime = _ts()
    # how the owner showed the face is theirs, and whether anything stands against the claim (docs/enrollment.md)
    verification: Verification = Verification.PHOTO
    status: LikenessStatus = LikenessStatus.ACTIVE
    verified_at: datetime | None = _opt_ts()
    figure_id: str | None = Field(default=None, index=True)  # the protected public figure an admin approved it as
    identity: dict[str, Any] = _json(dict)  # the operator's identity check's verdict (provider, outcome, ...)


class Challenge(SQLModel, table=True):
    """A live challenge: the head poses an account must perform on camera, in order, before ``expires_at``.
    Used once (``used_at``), by the account that asked for it."""

    id: str = Field(default_factory=lambda: new_id("chl"), primary_key=True)
    account_id: str = Field(foreign_key="account.id", index=True)
    poses: list[str] = _json(list)
    created_at: datetime = _ts()
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True))  # type: ignore[call-overload]
    used_at: datetime | None = _opt_ts()
    outcome: str | None = None  # "verified", or the refusal's reason code
    likeness_id: str | None = None  # the likeness it verified


class DisputeKind(StrEnum):
    DOUBLE_CLAIM = "double_claim"  # the face matches another account's likeness, enrolled earlier
    PUBLIC_FIGURE = "public_figure"  # the face matches a protected public figure
    IDENTITY = "identity"  # the operator's identity check did not verify the owner


class DisputeState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Dispute(SQLModel, table=True):
    """A claim on a face an admin must decide. ``likeness_id`` is the claim under review (disputed or
    pending_review until every dispute on it is resolved); for a double claim ``holder_likeness_id`` is the
    earlier one. No foreign keys to likenesses: the record outlives the likenesses a resolution deletes."""

    id: str = Field(default_factory=lambda: new_id("dsp"), primary_key=True)
    kind: DisputeKind
    state: DisputeState = Field(default=DisputeState.OPEN, index=True)
    likeness_id: str = Field(index=True)
    claimant_id: str = Field(foreign_key="account.id")
    holder_likeness_id: str | None = Field(default=None, index=True)
    holder_id: str | None = Field(default=None, foreign_key="account.id")
    figure_id: str | None = None
    distance: float | None = None
    detail: str = ""
    outcome: str | None = None
    reason: str | None = Field(default=None, max_length=1000)
    resolved_by: str | None = None
    created_at: datetime = _ts()
    resolved_at: datetime | None = _opt_ts()


class Figure(SQLModel, table=True):
    """A protected public figure in the operator's gallery: names a prompt may not use, and a face template an
    output may not show, unless a live-verified likeness an admin approved as them consents."""

    id: str = Field(default_factory=lambda: new_id("fig"), primary_key=True)
    name: str = Field(max_length=200)
    aliases: list[str] = _json(list)
    backend: str
    template: bytes = Field(sa_type=sa.LargeBinary, repr=False)  # type: ignore[call-overload]
    embeddings: int = 0
    created_by: str | None = None  # the admin's account id; None from the command line
    created_at: datetime = _ts()


def is_figure_key(key: str) -> bool:
    """Whether a key of the face index (likeness ids and figure ids) is a protected public figure's."""
    return key.startswith("fig_")


class Grant(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("gr"), primary_key=True)
    likeness_id: str = Field(foreign_key="likeness.id", index=True)
    grantee_id: str = Field(foreign_key="account.id", index=True)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _opt_ts()


class Character(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("ch"), primary_key=True)
    owner_id: str = Field(foreign_key="account.id", index=True)
    name: str = Field(max_length=200)
    aliases: list[str] = _json(list)
    rule: CharacterRule
    licensees: list[str] = _json(list)  # account ids
    attribution: str | None = Field(default=None, max_length=60)  # the credit the attribution rule requires
    created_at: datetime = _ts()


class CharacterReference(SQLModel, table=True):
    """A reference image of a character, kept as its embedding under the operator's image encoder (the
    picture itself is not stored): what the gate's visual check compares the output's frames with."""

    id: str = Field(default_factory=lambda: new_id("ref"), primary_key=True)
    character_id: str = Field(foreign_key="character.id", index=True)
    encoder: str  # which model made the embedding; others' embeddings are not compared
    embedding: bytes = Field(sa_type=sa.LargeBinary, repr=False)  # type: ignore[call-overload]  # float32 row
    created_at: datetime = _ts()


class Generation(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("gen"), primary_key=True)
    requester_id: str = Field(foreign_key="account.id", index=True)
    prompt: str
    seed: int = Field(sa_type=sa.BigInteger)  # type: ignore[call-overload]
    likeness_ids: list[str] = _json(list)
    state: GenerationState = Field(default=GenerationState.REQUESTED, index=True)
    reasons: list[str] = _json(list)
    decisions: list[dict[str, Any]] = _json(list)
    grants_relied: list[dict[str, Any]] = _json(list)
    faces_found: list[dict[str, Any]] = _json(list)  # scan results: likeness, distance, frames
    content_id: str | None = Field(default=None, index=True, unique=True)
    generator: str | None = None
    video_sha256: str | None = None
    created_at: datetime = _ts(index=True)
    updated_at: datetime = _ts()
    released_at: datetime | None = _opt_ts()
    taken_down_at: datetime | None = _opt_ts()
    taken_down_by: str | None = None
    # the job engine's bookkeeping (governance/pipeline.py): the worker running it and until when its lease
    # holds (another worker may take the job over after that), and when it was last handed to the broker
    claimed_by: str | None = None
    lease_until: datetime | None = _opt_ts()
    enqueued_at: datetime | None = _opt_ts()


class GenerationReview(SQLModel, table=True):
    """A held generation's question to one likeness's owner: is the face in these frames you? The scan put a
    face in the uncertain band of the likeness (between its match and protect distances, detectors.pose).
    ``decision``: ``pending``, ``confirmed`` (it is them: the generation is blocked) or ``dismissed`` (not
    them: the gate goes on). ``frames``: a few of the frames the face is in, as the owner is shown them
    (``{"frame": index, "jpeg": base64}``, the face's ``box`` at its last sighting alongside)."""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    likeness_id: str = Field(primary_key=True, index=True)
    owner_id: str = Field(foreign_key="account.id", index=True)
    distance: float
    first_frame: int
    last_frame: int
    pose: str
    box: list[int] = _json(list)
    frames: list[dict[str, Any]] = _json(list)
    decision: str = Field(default="pending", index=True)
    created_at: datetime = _ts()
    decided_at: datetime | None = _opt_ts()


class GenerationLikeness(SQLModel, table=True):
    """Which likenesses a generation involves: named in the request, found by the scan, or both. Indexed by
    likeness so an owner's "every video that contains me" is one query. (No foreign key to the likeness: the
    history outlives a deleted likeness.)"""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    likeness_id: str = Field(primary_key=True, index=True)
    named: bool = False
    found: bool = False


class Notification(SQLModel, table=True):
    id: str = Field(default_factory=lambda: new_id("ntf"), primary_key=True)
    account_id: str = Field(foreign_key="account.id", index=True)
    kind: str
    message: str
    generation_id: str | None = None
    likeness_id: str | None = None
    created_at: datetime = _ts()
    read_at: datetime | None = _opt_ts()


class AuditEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tag: str = Field(index=True)
    actor_id: str | None = None
    subject: str | None = Field(default=None, index=True)
    data: dict[str, Any] = _json(dict)
    created_at: datetime = _ts()


class Counter(SQLModel, table=True):
    """Monotonic counters bumped atomically (``UPDATE ... SET value = value + 1``) in the same transaction as
    the change they count; in-memory indexes compare them to skip a resync when nothing changed."""

    name: str = Field(primary_key=True)
    value: int = Field(default=0, sa_type=sa.BigInteger)  # type: ignore[call-overload]


class IndexChange(SQLModel, table=True):
    """The change feed the in-memory indexes follow: which likeness or fingerprint (``key``) was added, changed or
    removed at ``version`` of its counter (``kind``: ``likenesses`` or ``fingerprints``). Written in the
    transaction of the change, under the counter's row lock, so versions become visible in order and a process
    that has applied version N reads ``version > N`` and nothing else (:func:`governance.db.changes_since`)."""

    kind: str = Field(primary_key=True)
    version: int = Field(primary_key=True, sa_type=sa.BigInteger)  # type: ignore[call-overload]
    key: str
    created_at: datetime = _ts()


class ContentFingerprint(SQLModel, table=True):
    """The perceptual fingerprint of a released video, for finding its record when marks are gone."""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    content_id: str = Field(index=True)
    data: bytes = Field(sa_type=sa.LargeBinary, repr=False)  # type: ignore[call-overload]
    created_at: datetime = _ts()


class GenerationCharacter(SQLModel, table=True):
    """Which registered characters a generation's prompt named, and whether the character's rule allowed
    the requester: a rights holder's usage report is one query by character. (No foreign key to the
    character: the usage history outlives a deleted character.)"""

    generation_id: str = Field(foreign_key="generation.id", primary_key=True)
    character_id: str = Field(primary_key=True, index=True)
    allowed: bool


class LogEntry(SQLModel, table=True):
    """The transparency log: an append-only hash chain of released content, and the leaves of its Merkle
    tree (:class:`LogNode`)."""

    index: int = Field(primary_key=True)
    generation_id: str = Field(index=True)
    content_id: str = Field(index=True)
    video_sha256: str
    manifest_sha256: str
    prev_hash: str
    entry_hash: str
    created_at: datetime = _ts()
    # 1: the hash covers neither the version nor created_at (entries made before revision 0006);
    # 2: it covers both (governance.services.translog.entry_hash)
    hash_version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class LogNode(SQLModel, table=True):
    """A complete, aligned subtree of the transparency log's Merkle tree (RFC 9162): ``level`` 0 holds the
    leaf hashes, level ``l`` the node over leaves ``[idx * 2**l, (idx + 1) * 2**l)``. Written once, when
    the subtree fills up, so any root, inclusion or consistency proof takes O(log n) lookups."""

    level: int = Field(primary_key=True)
    idx: int = Field(primary_key=True)
    digest: str  # hex SHA-256


class LogHead(SQLModel, table=True):
    """A signed tree head the service issued (:class:`provenance.treehead.SignedTreeHead`), kept so an
    audit can show that today's log still extends every head it ever signed: entries removed from its
    end, or rewritten, no longer give a root the service signed."""

    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(index=True, sa_type=sa.BigInteger)  # type: ignore[call-overload]
    root_hash: str
    timestamp: str  # as signed (ISO 8601, UTC)
    alg: str
    signature: str  # base64
    certificate_chain_pem: str = Field(sa_type=sa.Text)  # type: ignore[call-overload]
    created_at: datetime = _ts()


# Domain packages keep their own tables; importing them here keeps SQLModel.metadata complete.
from governance.remix.models import GenerationEdge  # noqa: E402,F401
from governance.softbinding.models import ReleaseManifest  # noqa: E402,F401

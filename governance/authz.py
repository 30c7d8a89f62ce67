"""Who may do what: one table, read by the views (before anything is parsed) and the services (on the row).

Every endpoint is one :class:`Action`. Its :class:`Permission` names the principals allowed on their own
resource (``owner``) and on anybody's (``other``). For endpoints not keyed by a resource id the two sets are
equal: the relation does not apply. Principals are the four roles and the anonymous caller.

Roles never stand in for the person. Only a likeness's owner reads it, grants, revokes, changes its mode or
deletes it; only the rights holder who registered a character manages it; only creators request generations.
An admin creates accounts, rotates tokens, takes a video down (with a reason, audited, the people in it
told), resolves disputes over who a face belongs to and keeps the protected public-figure gallery; an admin,
like a regulator, may read any generation.

What a refusal says never depends on whether the resource exists:

- a principal the action is not for at all is refused before any lookup (401 anonymous, 403 otherwise);
- someone else's resource answers exactly like an unknown id (404), unless the caller may read that
  resource anyway (a regulator reading any generation), in which case the refusal is 403.

    >>> from governance.authz import Action, Principal, allows
    >>> allows(Action.LIKENESS_GRANT, Principal.ADMIN, owner=False)
    False
    >>> allows(Action.GENERATION_TAKEDOWN, Principal.ADMIN, owner=False)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from sqlmodel import Session

from governance.accounts.models import Account, Role
from governance.errors import Forbidden, NotFound, Unauthenticated


class Principal(StrEnum):
    CREATOR = "creator"
    RIGHTS_HOLDER = "rights_holder"
    REGULATOR = "regulator"
    ADMIN = "admin"
    ANONYMOUS = "anonymous"


class Resource(StrEnum):
    """What an id in a path names, and who counts as its owner."""

    LIKENESS = "likeness"  # its owner
    CHARACTER = "character"  # the rights holder who registered it
    GENERATION = "generation"  # its requester, or the owner of a likeness it names or shows


class Action(StrEnum):
    ME_READ = "me:read"
    ME_TOKEN = "me:token:rotate"
    ACCOUNT_CREATE = "account:create"
    ACCOUNT_LIST = "account:list"
    ACCOUNT_TOKEN = "account:token:rotate"
    CONTACT_LIST = "contact:list"
    CONTACT_ADD = "contact:add"
    CONTACT_REMOVE = "contact:remove"
    LIKENESS_ENROLL = "likeness:enroll"
    LIKENESS_LIST = "likeness:list"
    LIKENESS_READ = "likeness:read"
    LIKENESS_MODE = "likeness:mode"
    LIKENESS_DELETE = "likeness:delete"
    LIKENESS_GRANT = "likeness:grant"
    LIKENESS_REVOKE = "likeness:revoke"
    LIKENESS_GENERATIONS = "likeness:generations"
    LIKENESS_CHALLENGE = "likeness:challenge"
    LIKENESS_VERIFY = "likeness:verify"
    LIKENESS_RESTRICTIONS_READ = "likeness:restrictions:read"
    LIKENESS_RESTRICTIONS_SET = "likeness:restrictions:set"
    DISPUTE_LIST = "dispute:list"
    DISPUTE_READ = "dispute:read"
    DISPUTE_RESOLVE = "dispute:resolve"
    FIGURE_LIST = "figure:list"
    FIGURE_ADD = "figure:add"
    FIGURE_REMOVE = "figure:remove"
    CHARACTER_CREATE = "character:create"
    CHARACTER_LIST = "character:list"
    CHARACTER_REFERENCES = "character:references"
    CHARACTER_SIMULATE = "character:simulate"
    CHARACTER_USAGE = "character:usage"
    CHARACTER_DELETE = "character:delete"
    GENERATION_CREATE = "generation:create"
    GENERATION_LIST = "generation:list"
    GENERATION_READ = "generation:read"
    GENERATION_VIDEO = "generation:video"
    GENERATION_CONSENT_RECORD = "generation:consent-record"
    GENERATION_TAKEDOWN = "generation:takedown"
    GENERATION_REVIEWS = "generation:review:read"
    GENERATION_REVIEW = "generation:review"
    GENERATION_DRAFT = "generation:draft:read"
    GENERATION_DRAFT_DECIDE = "generation:draft"
    GENERATION_APPROVALS = "generation:approval:read"
    GENERATION_APPROVE = "generation:approval"
    GUARDIAN_LINK = "account:guardian:link"
    GUARDIAN_UNLINK = "account:guardian:unlink"
    MINORITY_END = "account:minority:end"
    GUARDIAN_APPROVALS = "guardian:approval:list"
    GUARDIAN_DECIDE = "guardian:approval"
    NOTICE_FILE = "notice:file"
    NOTICE_STATUS = "notice:status"
    NOTICE_CHALLENGE = "notice:challenge"
    NOTICE_FACE = "notice:face"
    NOTICE_LIST = "notice:list"
    NOTICE_READ = "notice:read"
    NOTICE_DECIDE = "notice:decide"
    NOTICE_COUNTER = "notice:counter"
    VERIFY = "verify"
    LOG_HEAD = "log:head"
    LOG_ENTRY = "log:entry"
    LOG_CONSISTENCY = "log:consistency"
    LOG_TRUST_ANCHOR = "log:trust-anchor"
    NOTIFICATION_LIST = "notification:list"
    NOTIFICATION_READ = "notification:read"
    SBR_BY_BINDING = "sbr:matches:by-binding"
    SBR_BY_LARGE_BINDING = "sbr:matches:by-large-binding"
    SBR_BY_CONTENT = "sbr:matches:by-content"
    SBR_MANIFEST = "sbr:manifest"
    SBR_ALGORITHMS = "sbr:algorithms"
    METRICS = "ops:metrics"
    OPENAPI = "api:openapi"
    DOCS = "api:docs"
    DOCS_ASSET = "api:docs:asset"
    READINESS = "ops:readiness"


@dataclass(frozen=True)
class Permission:
    route: str  # "METHOD /v1/path/<arg>", exactly as the view registers it
    owner: frozenset[Principal]  # allowed on their own resource (unkeyed endpoints: allowed at all)
    other: frozenset[Principal]  # allowed on someone else's resource
    resource: Resource | None = None  # what the id in the path names; None: not keyed by a resource
    note: str = ""

    @property
    def anyone(self) -> frozenset[Principal]:
        return self.owner | self.other


_C, _R, _G, _A, _ANON = (Principal.CREATOR, Principal.RIGHTS_HOLDER, Principal.REGULATOR, Principal.ADMIN,
                         Principal.ANONYMOUS)
ACCOUNTS = frozenset({_C, _R, _G, _A})  # any account
EVERYONE = ACCOUNTS | {_ANON}  # a token, if sent, must still be valid
NOBODY: frozenset[Principal] = frozenset()


def _open(route: str, who: frozenset[Principal], note: str = "") -> Permission:
    return Permission(route, who, who, None, note)


def _keyed(route: str, resource: Resource, owner: frozenset[Principal], other: frozenset[Principal] = NOBODY,
           note: str = "") -> Permission:
    return Permission(route, owner, other, resource, note)


TABLE: dict[Action, Permission] = {
    Action.ME_READ: _open("GET /v1/me", ACCOUNTS),
    Action.ME_TOKEN: _open("POST /v1/me/token", ACCOUNTS),
    Action.ACCOUNT_CREATE: _open("POST /v1/accounts", frozenset({_A})),
    Action.ACCOUNT_LIST: _open("GET /v1/accounts", frozenset({_A})),
    Action.ACCOUNT_TOKEN: _open("POST /v1/accounts/<ref>/token", frozenset({_A}),
                                "revokes the token; the new one comes from the operator, never the admin"),
    Action.CONTACT_LIST: _open("GET /v1/contacts", ACCOUNTS, "names and the mutual flag, nothing else"),
    Action.CONTACT_ADD: _open("PUT /v1/contacts/<ref>", ACCOUNTS,
                              "by name only; 204 whether or not the name exists"),
    Action.CONTACT_REMOVE: _open("DELETE /v1/contacts/<ref>", ACCOUNTS,
                                 "404 alike for an unknown name and one not in your contacts"),
    Action.LIKENESS_ENROLL: _open("POST /v1/likenesses", ACCOUNTS, "your own face"),
    Action.LIKENESS_LIST: _open("GET /v1/likenesses", ACCOUNTS, "your own likenesses"),
    Action.LIKENESS_READ: _keyed("GET /v1/likenesses/<likeness_id>", Resource.LIKENESS, ACCOUNTS),
    Action.LIKENESS_MODE: _keyed("PATCH /v1/likenesses/<likeness_id>", Resource.LIKENESS, ACCOUNTS),
    Action.LIKENESS_DELETE: _keyed("DELETE /v1/likenesses/<likeness_id>", Resource.LIKENESS, ACCOUNTS),
    Action.LIKENESS_GRANT: _keyed("PUT /v1/likenesses/<likeness_id>/grants/<account_ref>", Resource.LIKENESS,
                                  ACCOUNTS),
    Action.LIKENESS_REVOKE: _keyed("DELETE /v1/likenesses/<likeness_id>/grants/<account_ref>", Resource.LIKENESS,
                                   ACCOUNTS),
    Action.LIKENESS_GENERATIONS: _keyed("GET /v1/likenesses/<likeness_id>/generations", Resource.LIKENESS,
                                        ACCOUNTS),
    Action.LIKENESS_CHALLENGE: _open("POST /v1/likenesses/challenges", ACCOUNTS,
                                     "bound to the caller: only they may answer it"),
    Action.LIKENESS_VERIFY: _keyed("POST /v1/likenesses/<likeness_id>/verification", Resource.LIKENESS, ACCOUNTS,
                                   note="with the caller's own challenge; the face must match"),
    Action.LIKENESS_RESTRICTIONS_READ: _keyed("GET /v1/likenesses/<likeness_id>/restrictions", Resource.LIKENESS,
                                              ACCOUNTS),
    Action.LIKENESS_RESTRICTIONS_SET: _keyed("PUT /v1/likenesses/<likeness_id>/restrictions", Resource.LIKENESS,
                                             ACCOUNTS, note="how the likeness may be used: categories, phrases, a "
                                                            "note; audited"),
    Action.DISPUTE_LIST: _open("GET /v1/disputes", frozenset({_A})),
    Action.DISPUTE_READ: _open("GET /v1/disputes/<dispute_id>", frozenset({_A})),
    Action.DISPUTE_RESOLVE: _open("POST /v1/disputes/<dispute_id>/resolve", frozenset({_A}),
                                  "with a reason, audited; never by an admin who owns a likeness in it (403)"),
    Action.FIGURE_LIST: _open("GET /v1/figures", frozenset({_A})),
    Action.FIGURE_ADD: _open("POST /v1/figures", frozenset({_A}), "audited; likenesses showing the face go to review"),
    Action.FIGURE_REMOVE: _open("DELETE /v1/figures/<figure_id>", frozenset({_A}), "audited"),
    Action.CHARACTER_CREATE: _open("POST /v1/characters", frozenset({_R})),
    Action.CHARACTER_LIST: _open("GET /v1/characters", ACCOUNTS),
    Action.CHARACTER_SIMULATE: _open("POST /v1/characters/simulate", frozenset({_R})),
    Action.CHARACTER_REFERENCES: _keyed("POST /v1/characters/<character_id>/references", Resource.CHARACTER,
                                        frozenset({_R})),
    Action.CHARACTER_USAGE: _keyed("GET /v1/characters/<character_id>/usage", Resource.CHARACTER, frozenset({_R})),
    Action.CHARACTER_DELETE: _keyed("DELETE /v1/characters/<character_id>", Resource.CHARACTER, frozenset({_R})),
    Action.GENERATION_CREATE: _open("POST /v1/generations", frozenset({_C})),
    Action.GENERATION_LIST: _open("GET /v1/generations", ACCOUNTS,
                                  "the generations you requested; a regulator's: everyone's"),
    Action.GENERATION_READ: _keyed("GET /v1/generations/<generation_id>", Resource.GENERATION, ACCOUNTS,
                                   frozenset({_G, _A})),
    Action.GENERATION_VIDEO: _keyed("GET /v1/generations/<generation_id>/video", Resource.GENERATION, ACCOUNTS,
                                    frozenset({_G, _A})),
    Action.GENERATION_CONSENT_RECORD: _keyed("GET /v1/generations/<generation_id>/consent-record",
                                             Resource.GENERATION, ACCOUNTS, frozenset({_G, _A}),
                                             "the openings of its public commitments: all of them for regulators "
                                             "and admins, their own for the requester and likeness owners"),
    Action.GENERATION_TAKEDOWN: _keyed("DELETE /v1/generations/<generation_id>", Resource.GENERATION, ACCOUNTS,
                                       frozenset({_A}), "an admin's takedown needs a reason; the people in it "
                                                        "are told"),
    Action.GENERATION_REVIEWS: _keyed("GET /v1/generations/<generation_id>/review", Resource.GENERATION, ACCOUNTS,
                                      note="the questions put to you about a held generation, with the frames; "
                                           "nobody else's, not even an admin's or a regulator's"),
    Action.GENERATION_REVIEW: _keyed("POST /v1/generations/<generation_id>/review", Resource.GENERATION, ACCOUNTS,
                                     note="the owner of a likeness a held generation may show: confirm (blocked) "
                                          "or dismiss (the gate goes on); 409 with no question pending for you"),
    Action.GENERATION_DRAFT: _keyed("GET /v1/generations/<generation_id>/draft", Resource.GENERATION, ACCOUNTS,
                                    note="the sealed draft, to an owner asked to approve it; 409 with none waiting"),
    Action.GENERATION_DRAFT_DECIDE: _keyed("POST /v1/generations/<generation_id>/draft", Resource.GENERATION,
                                           ACCOUNTS, note="the owner asked: approve (released) or reject (blocked); "
                                                          "410 once it expired"),
    Action.GENERATION_APPROVALS: _keyed("GET /v1/generations/<generation_id>/approval", Resource.GENERATION,
                                        ACCOUNTS, note="the approvals asked of you for a generation held by your "
                                                       "restrictions; nobody else's"),
    Action.GENERATION_APPROVE: _keyed("POST /v1/generations/<generation_id>/approval", Resource.GENERATION,
                                      ACCOUNTS, note="the owner of a likeness whose restrictions held it: approve "
                                                     "(generated) or deny (blocked); 409 with none pending for you"),
    Action.GUARDIAN_LINK: _open("PUT /v1/accounts/<ref>/guardian", frozenset({_A}),
                                "marks the account a minor's and links its guardian; audited, both told"),
    Action.GUARDIAN_UNLINK: _open("DELETE /v1/accounts/<ref>/guardian", frozenset({_A}),
                                  "audited; the guardian is told; no grant can be approved until another is linked"),
    Action.MINORITY_END: _open("POST /v1/accounts/<ref>/majority", frozenset({_A}),
                               "the holder came of age (the admin says how it was checked); audited, both told"),
    Action.GUARDIAN_APPROVALS: _open("GET /v1/guardian/approvals", ACCOUNTS, "the grants your wards asked for"),
    Action.GUARDIAN_DECIDE: _open("POST /v1/guardian/approvals/<approval_id>", ACCOUNTS,
                                  "the guardian of the minor who asked (404 to anyone else): approve makes the grant"),
    # Takedown notices: filed by anyone, no account needed; the filer acts by the notice's private link (its
    # token), which answers 404 without it, exactly like an unknown id
    Action.NOTICE_FILE: _open("POST /v1/notices", EVERYONE, "about a video released here (422 otherwise, nothing "
                                                            "stored); the private link is shown once"),
    Action.NOTICE_STATUS: _open("GET /v1/notices/<notice_id>/status", EVERYONE, "with the notice's private token"),
    Action.NOTICE_CHALLENGE: _open("POST /v1/notices/<notice_id>/challenge", EVERYONE,
                                   "with the notice's private token; a notice filed on one's own behalf"),
    Action.NOTICE_FACE: _open("POST /v1/notices/<notice_id>/face", EVERYONE,
                              "with the notice's private token: the live challenge's video; the face found in the "
                              "video takes it down at once"),
    Action.NOTICE_LIST: _open("GET /v1/notices", frozenset({_G, _A}), "the review queue"),
    Action.NOTICE_READ: _open("GET /v1/notices/<notice_id>", frozenset({_G, _A}), "with the facts gathered"),
    Action.NOTICE_DECIDE: _open("POST /v1/notices/<notice_id>/decision", frozenset({_A}),
                                "with a reason, audited; the filer and the requester are told"),
    Action.NOTICE_COUNTER: _open("POST /v1/notices/<notice_id>/counter", ACCOUNTS,
                                 "the requester of the video taken down, before the deadline (404 to anyone else)"),
    Action.VERIFY: _open("POST /v1/verify", EVERYONE),
    Action.LOG_HEAD: _open("GET /v1/log", EVERYONE),
    Action.LOG_ENTRY: _open("GET /v1/log/entries/<int:index>", EVERYONE),
    Action.LOG_CONSISTENCY: _open("GET /v1/log/consistency", EVERYONE),
    Action.LOG_TRUST_ANCHOR: _open("GET /v1/log/trust-anchor", EVERYONE,
                                   "the root certificate the signed tree head is checked under (PEM)"),
    # The C2PA Soft Binding Resolution API: public like verification, and rate limited by the same limiter
    Action.SBR_BY_BINDING: _open("GET /sbr/v1/matches/byBinding", EVERYONE, "C2PA soft binding resolution"),
    Action.SBR_BY_LARGE_BINDING: _open("POST /sbr/v1/matches/byBinding", EVERYONE, "C2PA soft binding resolution"),
    Action.SBR_BY_CONTENT: _open("POST /sbr/v1/matches/byContent", EVERYONE,
                                 "the asset in the body; nothing uploaded is kept"),
    Action.SBR_MANIFEST: _open("GET /sbr/v1/manifests/<manifest_id>", EVERYONE, "the manifest store, application/c2pa"),
    Action.SBR_ALGORITHMS: _open("GET /sbr/v1/services/supportedAlgorithms", EVERYONE),
    Action.NOTIFICATION_LIST: _open("GET /v1/notifications", ACCOUNTS, "your own"),
    Action.NOTIFICATION_READ: _open("POST /v1/notifications/read", ACCOUNTS, "your own"),
    # Open like /healthz: Prometheus and load balancers scrape without a token. Nothing in them names a person, an
    # account, a likeness or a prompt (labels are outcomes, rule families, stages, states); operators keep both
    # off the public listener (docs/operations.md).
    # The API's contract and its reference pages: public, like the API they describe (governance/openapi.py)
    Action.OPENAPI: _open("GET /openapi.json", EVERYONE, "the OpenAPI 3.1 document"),
    Action.DOCS: _open("GET /docs", EVERYONE, "the API reference (Swagger UI), offline"),
    Action.DOCS_ASSET: _open("GET /docs/assets/<name>", EVERYONE, "the reference's scripts and styles, from a "
                                                                  "Python package"),
    Action.METRICS: _open("GET /metrics", EVERYONE, "counts and durations only: no ids, names or prompts"),
    Action.READINESS: _open("GET /readyz", EVERYONE, "503 while the database, the broker or the signer is "
                                                     "unreachable"),
}

# The action whose ``other`` set says who may see someone else's resource of each kind (and so may be told
# 403 rather than 404 when the action they asked for is not theirs).
_SEES: dict[Resource, Action] = {
    Resource.LIKENESS: Action.LIKENESS_READ,
    Resource.CHARACTER: Action.CHARACTER_USAGE,
    Resource.GENERATION: Action.GENERATION_READ,
}


def principal(account: Account | None) -> Principal:
    return Principal.ANONYMOUS if account is None else Principal(Role(account.role).value)


def allows(action: Action, who: Principal, *, owner: bool) -> bool:
    """The table's answer for one cell: may ``who`` do ``action`` on their own resource (``owner``) or on
    someone else's? (For unkeyed actions both columns hold the same answer.)"""
    p = TABLE[action]
    return who in (p.owner if owner else p.other)


def admit(action: Action, account: Account | None) -> Account | None:
    """Refuse a principal the action is never for, before anything is looked up (401 anonymous, 403 a role)."""
    p = TABLE[action]
    who = principal(account)
    if who in p.anyone:
        return account
    if account is None:
        raise Unauthenticated("send 'Authorization: Bearer <token>'")
    roles = sorted(w.value for w in p.anyone if w is not Principal.ANONYMOUS)
    raise Forbidden(f"{action.value} is for {' or '.join(roles)} accounts; this account is {who.value}")


def require(action: Action, account: Account | None, *, owner: bool, key: str) -> None:
    """Allow ``account`` to do ``action`` on the resource ``key`` it owns (or not), or refuse the way an
    unknown ``key`` is refused: 404 with the same body, unless the caller may see that resource anyway."""
    p = TABLE[action]
    assert p.resource is not None, f"{action} is not keyed by a resource"
    admit(action, account)
    who = principal(account)
    if allows(action, who, owner=owner) or (owner and allows(action, who, owner=False)):
        return
    if not owner and allows(_SEES[p.resource], who, owner=False):
        raise Forbidden(f"{action.value} on someone else's {p.resource.value} is not for {who.value} accounts")
    raise not_found(p.resource, key)


class _Owned(Protocol):
    owner_id: str


_Row = TypeVar("_Row", bound=_Owned)


def owned(session: Session, model: type[_Row], actor: Account, key: str, action: Action) -> _Row:
    """The row ``key`` of ``model`` (a likeness, a character: anything with an ``owner_id``), when ``actor`` may
    do ``action`` on it as :func:`require` decides; someone else's answers exactly like an unknown ``key``."""
    row = session.get(model, key)
    require(action, actor, owner=row is not None and row.owner_id == actor.id, key=key)
    assert row is not None  # require() refuses a missing one as it refuses someone else's
    return row


def not_found(resource: Resource, key: str) -> NotFound:
    """The one answer for an unknown id and for an id the caller may not know about."""
    return NotFound(f"no {resource.value} {key!r}")

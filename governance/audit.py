"""Typed audit events, written in the same transaction as the change they describe."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlmodel import Session

from governance.bookkeeping import AuditEvent


class Tag(StrEnum):
    ACCOUNT_CREATE = "account:create"
    TOKEN_ROTATE = "account:token:rotate"
    CONTACT_ADD = "account:contact:add"
    CONTACT_REMOVE = "account:contact:remove"
    NOTIFICATIONS_READ = "account:notifications:read"
    QUOTA_SET = "account:quota:set"
    LIKENESS_ENROLL = "likeness:enroll"
    LIKENESS_MODE = "likeness:mode:change"
    LIKENESS_DELETE = "likeness:delete"
    GRANT_CREATE = "likeness:grant:create"
    GRANT_REVOKE = "likeness:grant:revoke"
    CHALLENGE_CREATE = "likeness:challenge:create"
    LIKENESS_VERIFY = "likeness:verify"  # a live challenge passed: a new live likeness, or a photo one upgraded
    LIKENESS_VERIFY_REFUSE = "likeness:verify:refuse"  # a live challenge attempt refused (the challenge is spent)
    IDENTITY_CHECK = "likeness:identity:check"  # the operator's identity proof's verdict
    DISPUTE_OPEN = "dispute:open"
    DISPUTE_RESOLVE = "dispute:resolve"
    FIGURE_ADD = "figure:add"
    FIGURE_REMOVE = "figure:remove"
    CHARACTER_CREATE = "character:create"
    CHARACTER_DELETE = "character:delete"
    CHARACTER_UPDATE = "character:update"  # names, aliases, rule, licensees or credit changed (the pages' edit)
    CHARACTER_REFERENCES = "character:references:add"
    GENERATION_REQUEST = "generation:request"
    GENERATION_BLOCK = "generation:block"
    GENERATION_RELEASE = "generation:release"
    GENERATION_TAKEDOWN = "generation:takedown"
    GENERATION_HOLD = "generation:hold"  # a face in a likeness's uncertain band: held for its owner's review
    GENERATION_REVIEW = "generation:review"  # the owner confirmed (blocked) or dismissed (goes on)
    GENERATION_REMIX = "generation:remix"  # a generation made from a released one (lineage edge)
    GENERATION_LINEAGE = "generation:lineage:withdrawn"  # an ancestor was withdrawn: blocked, taken down or marked
    CONSENT_RECORD_OPEN = "generation:consent-record:open"
    LIKENESS_RESTRICT = "likeness:restrictions:set"  # the owner set how the likeness may be used
    GENERATION_APPROVAL = "generation:approval"  # the owner approved (goes on) or denied (blocked) a held prompt
    GUARDIAN_LINK = "account:guardian:link"  # an admin marked the account a minor's, linked to its guardian
    GUARDIAN_UNLINK = "account:guardian:unlink"
    MINORITY_END = "account:minority:end"  # an admin checked the holder came of age: no longer a minor's account
    GUARDIAN_APPROVAL = "likeness:grant:guardian"  # a minor's grant requested, approved, denied or cancelled
    NOTICE_FILE = "notice:file"  # a takedown notice from anyone (no account)
    NOTICE_FACE = "notice:face"  # its filer's live challenge, and whether their face is in the video
    NOTICE_DECIDE = "notice:decide"  # taken down (face found, or a reviewer), rejected, restored, kept down
    NOTICE_COUNTER = "notice:counter"  # the video's requester's counter-notice
    NOTICE_OVERDUE = "notice:overdue"  # no reviewer decided within the deadline: escalated to every administrator
    KEY_IN_USE = "keys:in-use"  # from this release count on, releases use this signing chain / watermark key
    KEY_RETIRE = "keys:retire"  # retired on purpose (consentgate keys retire): a new key may be made


def record(session: Session, tag: Tag, *, actor_id: str | None, subject: str | None, **data: Any) -> None:
    session.add(AuditEvent(tag=tag.value, actor_id=actor_id, subject=subject, data=data))


def record_now(session: Session, tag: Tag, *, actor_id: str | None, subject: str | None, **data: Any) -> None:
    """:func:`record`, inserted at once (:func:`governance.db.insert_now`, after what the session holds pending)
    rather than at the next flush: for the paths every request takes (issue 12)."""
    from governance.db import insert_now  # governance.db imports every model, this module's included

    insert_now(session, [AuditEvent(tag=tag.value, actor_id=actor_id, subject=subject, data=data)])

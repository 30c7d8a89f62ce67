"""Accounts, API tokens (stored hashed, shown once), contacts and notifications."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import Session, select

from governance.accounts.models import Account, Contact, Notification, Role
from governance.audit import Tag, record
from governance.columns import utcnow
from governance.db import serialize_consent
from governance.errors import Conflict, InvalidInput, NotFound
from governance.pagination import Page, PageRequest, SortKey, paginate

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")


def hash_token(token: str) -> str:
    # Tokens are 256-bit random values, so a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> str:
    return "cg_" + secrets.token_urlsafe(32)


def create_account(session: Session, name: object, role: object, *, actor: Account | None = None,
                   daily_quota: object = None) -> tuple[Account, str]:
    """A new account and its API token (shown this once; only its hash is stored). ``actor`` is the
    admin who asked (None: the operator's CLI); ``daily_quota`` None means the service default."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(f"account names are 2-64 characters of a-z, 0-9, '.', '_' or '-', got {name!r}")
    if not isinstance(role, str) or role not in {r.value for r in Role}:
        raise InvalidInput(f"role must be one of {[r.value for r in Role]}, got {role!r}")
    role_ = Role(role)
    if session.exec(select(Account).where(Account.name == name)).first() is not None:
        raise Conflict(f"an account named {name!r} already exists")
    quota = _check_quota(daily_quota)
    token = _new_token()
    account = Account(name=name, role=role_, token_hash=hash_token(token), daily_quota=quota)
    session.add(account)
    record(session, Tag.ACCOUNT_CREATE, actor_id=actor.id if actor else None, subject=account.id, name=name,
           role=role_.value)
    return account, token


#: The largest daily quota an account may be given (generations per UTC day).
MAX_DAILY_QUOTA = 100_000


def _check_quota(daily_quota: object) -> int | None:
    if daily_quota is None:
        return None
    if isinstance(daily_quota, bool) or not isinstance(daily_quota, int) or not 0 <= daily_quota <= MAX_DAILY_QUOTA:
        raise InvalidInput(f"daily_quota must be a whole number from 0 to {MAX_DAILY_QUOTA} (or null: the default), "
                           f"got {daily_quota!r}")
    return daily_quota


def set_daily_quota(session: Session, account: Account, daily_quota: object, *, actor: Account | None) -> None:
    """Give ``account`` its own daily generation quota (0 to :data:`MAX_DAILY_QUOTA`; None: the service default,
    ``GOVERNANCE_DAILY_QUOTA``), audited as ``account:quota:set``. It applies at once, to today's count too.
    InvalidInput (422) for anything else; ``actor`` None is the operator's CLI."""
    quota = _check_quota(daily_quota)
    before = account.daily_quota
    account.daily_quota = quota
    session.add(account)
    record(session, Tag.QUOTA_SET, actor_id=actor.id if actor else None, subject=account.id,
           before=before, after=quota)


def rotate_token(session: Session, account: Account, *, actor: Account | None) -> str:
    """Replace ``account``'s API token: the old one stops working when the caller commits, the new one
    is returned this once. ``actor`` is the account itself, an admin, or None (the operator's CLI)."""
    token = _new_token()
    account.token_hash = hash_token(token)
    session.add(account)
    record(session, Tag.TOKEN_ROTATE, actor_id=actor.id if actor else None, subject=account.id)
    return token


def revoke_token(session: Session, account: Account, *, actor: Account) -> None:
    """An admin stops ``account``'s API token at once (a leaked token), without learning a new one: a token
    handed to an admin would let the admin act as the person, and consent as them. The person gets a new
    token from the operator (``consentgate accounts rotate-token NAME``) and is notified here."""
    account.token_hash = hash_token(_new_token())  # a value nobody is ever shown
    session.add(account)
    record(session, Tag.TOKEN_ROTATE, actor_id=actor.id, subject=account.id, revoked=True)
    notify(session, account.id, "account:token:revoked",
           "an admin revoked your API token; ask the operator for a new one (consentgate accounts rotate-token)")


def list_accounts(session: Session) -> list[Account]:
    return list(session.exec(select(Account).order_by(Account.name)).all())  # type: ignore[arg-type]


def page_accounts(session: Session, page: PageRequest) -> Page[Account]:
    """One page of every account, by name."""
    return paginate(session, select(Account), (SortKey(Account.name),), page)


#: Built once (every API request runs it; building the select cost more than running it: issue 12).
_BY_TOKEN_HASH = select(Account).where(Account.token_hash == sa.bindparam("token_hash"))


def authenticate(session: Session, token: str) -> Account | None:
    if not token:
        return None
    return session.exec(_BY_TOKEN_HASH, params={"token_hash": hash_token(token)}).first()


def resolve_account(session: Session, ref: str) -> Account:
    """Find an account by id or by name."""
    account = session.get(Account, ref) or session.exec(select(Account).where(Account.name == ref)).first()
    if account is None:
        raise NotFound(f"no account {ref!r}")
    return account


def _by_name(session: Session, name: str) -> Account | None:
    return session.exec(select(Account).where(Account.name == name)).first()


def add_contact(session: Session, owner: Account, name: str) -> None:
    """List the account called ``name`` as a contact. By name only, never by id, and the caller learns
    nothing from it: an unknown name is accepted alike and lists nobody (ids printed in public records
    must not turn into names, and names must not be probed for existence or role)."""
    if name == owner.name:
        raise InvalidInput("an account cannot list itself as a contact")
    other = _by_name(session, name)
    if other is not None:
        serialize_consent(session, [owner.id, other.id])  # whether they are mutuals: both accounts' consent
    if other is not None and session.get(Contact, (owner.id, other.id)) is None:
        session.add(Contact(owner_id=owner.id, contact_id=other.id))
        record(session, Tag.CONTACT_ADD, actor_id=owner.id, subject=other.id)


def remove_contact(session: Session, owner: Account, ref: str) -> None:
    other = _by_name(session, ref)  # an unknown name and one not listed are refused alike
    if other is not None:
        serialize_consent(session, [owner.id, other.id])  # whether they are mutuals: both accounts' consent
    row = session.get(Contact, (owner.id, other.id)) if other is not None else None
    if other is None or row is None:
        raise NotFound(f"{ref!r} is not in your contacts")
    session.delete(row)
    record(session, Tag.CONTACT_REMOVE, actor_id=owner.id, subject=other.id)


def list_contacts(session: Session, owner: Account) -> list[tuple[Account, bool]]:
    rows = session.exec(select(Contact).where(Contact.owner_id == owner.id)).all()
    out = []
    for row in rows:
        acc = session.get(Account, row.contact_id)
        if acc is not None:
            out.append((acc, is_mutual(session, owner.id, acc.id)))
    return out


def page_contacts(session: Session, owner: Account, page: PageRequest) -> Page[tuple[Account, bool]]:
    """One page of ``owner``'s contacts that belong to an account, by name, each with whether it is mutual."""
    q = select(Account).join(Contact, Contact.contact_id == Account.id).where(  # type: ignore[arg-type]
        Contact.owner_id == owner.id)
    found = paginate(session, q, (SortKey(Account.name),), page)
    return Page([(a, is_mutual(session, owner.id, a.id)) for a in found.items], found.next_cursor)


def is_mutual(session: Session, a: str, b: str) -> bool:
    return session.get(Contact, (a, b)) is not None and session.get(Contact, (b, a)) is not None


# -- notifications: every use of an account holder's likeness, released or blocked, and what admins did to them --
#: Kinds of notification a minor's guardian gets a copy of (every use of the minor's likeness, and takedowns).
GUARDIAN_COPIES = ("likeness:use", "generation:takedown")


def notify(session: Session, account_id: str, kind: str, message: str, *, generation_id: str | None = None,
           likeness_id: str | None = None) -> None:
    session.add(Notification(account_id=account_id, kind=kind, message=message, generation_id=generation_id,
                             likeness_id=likeness_id))
    if kind.startswith(GUARDIAN_COPIES):  # a minor's guardian is told of every use and takedown (docs/guardians.md)
        from governance.guardians.models import Guardianship

        row = session.get(Guardianship, account_id)
        if row is not None and row.guardian_id:
            session.add(Notification(account_id=row.guardian_id, kind=f"guardian:{kind}",
                                     message=f"(about your ward) {message}", generation_id=generation_id,
                                     likeness_id=likeness_id))


def list_notifications(session: Session, account_id: str, *, unread_only: bool = False,
                       limit: int = 100) -> Sequence[Notification]:
    """The account's notifications, newest first, at most ``limit``."""
    q = select(Notification).where(Notification.account_id == account_id)
    if unread_only:
        q = q.where(Notification.read_at == None)  # noqa: E711
    return session.exec(q.order_by(Notification.created_at.desc()).limit(limit)).all()  # type: ignore[attr-defined]


def page_notifications(session: Session, account_id: str, page: PageRequest, *,
                       unread_only: bool = False) -> Page[Notification]:
    """One page of the account's notifications, newest first."""
    q = select(Notification).where(Notification.account_id == account_id)
    if unread_only:
        q = q.where(Notification.read_at == None)  # noqa: E711
    return paginate(session, q, (SortKey(Notification.created_at, descending=True),
                                 SortKey(Notification.id, descending=True)), page)


#: How many unread notifications one ``mark_read`` marks (the newest); a caller with more calls again.
MARK_READ_LIMIT = 10_000


def mark_read(session: Session, account: Account) -> int:
    """Mark the account's unread notifications read (the newest :data:`MARK_READ_LIMIT`), with an audit event
    ``account:notifications:read`` counting them; returns the count. The caller commits both together."""
    now = utcnow()
    unread = list_notifications(session, account.id, unread_only=True, limit=MARK_READ_LIMIT)
    for n in unread:
        n.read_at = now
        session.add(n)
    record(session, Tag.NOTIFICATIONS_READ, actor_id=account.id, subject=account.id, count=len(unread))
    return len(unread)

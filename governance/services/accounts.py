"""Accounts, API tokens (stored hashed, shown once) and contacts."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlmodel import Session, select

from governance.audit import Tag, record
from governance.errors import Conflict, InvalidInput, NotFound
from governance.models import Account, Contact, Role

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")


def hash_token(token: str) -> str:
    # Tokens are 256-bit random values, so a plain SHA-256 is enough (no password stretching needed).
    return hashlib.sha256(token.encode()).hexdigest()


def create_account(session: Session, name: str, role: str) -> tuple[Account, str]:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput(f"account names are 2-64 characters of a-z, 0-9, '.', '_' or '-', got {name!r}")
    try:
        role_ = Role(role)
    except ValueError as e:
        raise InvalidInput(f"role must be one of {[r.value for r in Role]}, got {role!r}") from e
    if session.exec(select(Account).where(Account.name == name)).first() is not None:
        raise Conflict(f"an account named {name!r} already exists")
    token = "cg_" + secrets.token_urlsafe(32)
    account = Account(name=name, role=role_, token_hash=hash_token(token))
    session.add(account)
    record(session, Tag.ACCOUNT_CREATE, actor_id=None, subject=account.id, name=name, role=role_.value)
    return account, token


def authenticate(session: Session, token: str) -> Account | None:
    if not token:
        return None
    return session.exec(select(Account).where(Account.token_hash == hash_token(token))).first()


def resolve_account(session: Session, ref: str) -> Account:
    """Find an account by id or by name."""
    account = session.get(Account, ref) or session.exec(select(Account).where(Account.name == ref)).first()
    if account is None:
        raise NotFound(f"no account {ref!r}")
    return account


def add_contact(session: Session, owner: Account, ref: str) -> Account:
    other = resolve_account(session, ref)
    if other.id == owner.id:
        raise InvalidInput("an account cannot list itself as a contact")
    if session.get(Contact, (owner.id, other.id)) is None:
        session.add(Contact(owner_id=owner.id, contact_id=other.id))
        record(session, Tag.CONTACT_ADD, actor_id=owner.id, subject=other.id)
    return other


def remove_contact(session: Session, owner: Account, ref: str) -> None:
    other = resolve_account(session, ref)
    row = session.get(Contact, (owner.id, other.id))
    if row is None:
        raise NotFound(f"{other.name!r} is not in your contacts")
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


def is_mutual(session: Session, a: str, b: str) -> bool:
    return session.get(Contact, (a, b)) is not None and session.get(Contact, (b, a)) is not None

"""Sign-in sessions for the pages, apart from Flask: an account token is exchanged once for a random session
secret; the browser keeps the secret (in a signed cookie), the database keeps its SHA-256 and when it ended.

    >>> import hashlib
    >>> session_key("s3cret") == hashlib.sha256(b"s3cret").hexdigest()
    True

Services never commit (the caller's unit of work does). A session lasts :data:`MAX_AGE` from sign-in at
most; signing out ends it on the server, so a copy of the cookie kept elsewhere is refused from then on.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, timedelta

from sqlmodel import Session

from governance.accounts.models import Account
from governance.accounts.services import authenticate
from governance.columns import utcnow
from governance.errors import Unauthenticated
from governance.pages.models import PageSession

#: How long a sign-in lasts at most (the cookie's lifetime too).
MAX_AGE = timedelta(hours=12)


def session_key(secret: str) -> str:
    """The row id of the session whose cookie carries ``secret``: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def sign_in(session: Session, token: str) -> tuple[Account, str]:
    """Exchange an account's API token for a new session: ``(account, secret)``; the secret goes in the cookie
    and nowhere else. Raises :class:`Unauthenticated` (401) for an empty or unknown token."""
    token = token.strip()
    account = authenticate(session, token) if token else None
    if account is None:
        raise Unauthenticated("that token does not belong to any account")
    secret = secrets.token_urlsafe(32)
    session.add(PageSession(id=session_key(secret), account_id=account.id, token_hash=account.token_hash))
    return account, secret


def account_for(session: Session, secret: str) -> Account | None:
    """The account of a live session, or None when ``secret`` names no session, one signed out, one older
    than :data:`MAX_AGE`, or one signed in with a token since rotated or revoked (both ended here: a leaked
    token's replacement also ends the browser sessions it opened)."""
    row = session.get(PageSession, session_key(secret))
    if row is None or row.ended_at is not None:
        return None
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    account = session.get(Account, row.account_id)
    if utcnow() - created > MAX_AGE or account is None or account.token_hash != row.token_hash:
        row.ended_at = utcnow()
        session.add(row)
        return None
    return account


def sign_out(session: Session, secret: str) -> bool:
    """End the session ``secret`` names; True when a live one was ended."""
    row = session.get(PageSession, session_key(secret))
    if row is None or row.ended_at is not None:
        return False
    row.ended_at = utcnow()
    session.add(row)
    return True

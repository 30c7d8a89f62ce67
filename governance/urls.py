"""URLs shown to people: a password never appears in a log line, a repr or a message (no imports beyond the
standard library's ``urllib.parse``, so the command line's client path can use it without the service's settings).
"""

from __future__ import annotations

__all__ = ["redact_url"]


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***``, for logs and reprs::

        >>> redact_url("postgresql+psycopg://app:s3cret@db:5432/cg")
        'postgresql+psycopg://app:***@db:5432/cg'
        >>> redact_url("redis://:s3cret@127.0.0.1:6379/0"), redact_url("sqlite:////var/cg.db")
        ('redis://:***@127.0.0.1:6379/0', 'sqlite:////var/cg.db')
    """
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL the parser takes (a bad port): show nothing of it
        return "<unparsable URL>"
    if not password:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{name}:***@{host}"))

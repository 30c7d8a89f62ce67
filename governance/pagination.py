"""Cursor (keyset) pagination for every list the API serves.

A list is read in pages of ``limit`` rows (1 to :data:`MAX_LIMIT`, default :data:`DEFAULT_LIMIT`) in one fixed
order that ends on a unique column, so each row has exactly one place. A page's ``cursor`` is the sort key of its
last row, made opaque and tamper-evident: a small JSON value naming the list (and, through the list's name, the
reader) it belongs to, signed with the service's cursor key (itsdangerous' ``URLSafeSerializer``: URL-safe
base64 and an HMAC; ``keys/cursor.key``, made at ``init``), so a cursor another reader was given, or one made by
hand, is refused; the next page is the
rows strictly after that key. Rows added or removed between two requests therefore never shift a page: nothing
is read twice and nothing already in the order before the cursor is skipped (keyset pagination, as opposed to
``OFFSET``, which drifts when rows are inserted ahead of it).

Errors are 400 (:class:`~governance.errors.BadRequest`): a ``limit`` that is not a whole number in range, and a
``cursor`` that is not one this service made for the same list.

    >>> from datetime import UTC, datetime
    >>> c = encode_cursor("generations", (datetime(2026, 1, 2, tzinfo=UTC), "gen_1"), b"k" * 32)
    >>> decode_cursor(c, "generations", b"k" * 32)
    (datetime.datetime(2026, 1, 2, 0, 0, tzinfo=datetime.timezone.utc), 'gen_1')
    >>> decode_cursor(c, "generations", b"x" * 32)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    governance.errors.BadRequest: the cursor is not one this service made (pass back ...)
    >>> decode_cursor(c, "accounts", b"k" * 32)
    Traceback (most recent call last):
    ...
    governance.errors.BadRequest: the cursor was not made for this list; start again without it
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.sql.elements import ColumnElement

from governance.errors import BadRequest, GovernanceError, InvalidInput

#: Rows per page when the request names no ``limit`` (the lists were cut at 100 before they were paged).
DEFAULT_LIMIT = 100
#: The most rows one page holds; a larger ``limit`` is refused with 400 rather than cut silently.
MAX_LIMIT = 500
_DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII only: str.isdigit() also takes '²', which int() refuses
_MAX_CURSOR = 1024  # characters: a cursor this service makes is far shorter
_SALT = "consentgate.pagination.cursor"  # itsdangerous derives the signing key from the secret and this

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    """What the client asked for: ``limit`` rows after the sort key ``after`` (None: from the start) of the list
    ``list_name`` (which names the reader too where the list is the reader's own); ``secret`` signs the next
    page's cursor."""

    list_name: str
    secret: bytes
    limit: int = DEFAULT_LIMIT
    after: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and the cursor of the next one (None on the last page)."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class SortKey:
    """One column of a list's order; the last key of every order must be unique (an id)."""

    column: Any
    descending: bool = False


def parse_page(args: Mapping[str, str], list_name: str, secret: bytes) -> PageRequest:
    """``limit`` and ``cursor`` from a query string (the cursor checked under ``secret``). Raises BadRequest
    (400) naming what is wrong."""
    raw = args.get("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
            raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw!r}",
                             max_limit=MAX_LIMIT)
        limit = int(raw)
    cursor = args.get("cursor")
    after = decode_cursor(cursor, list_name, secret) if cursor is not None else None
    return PageRequest(list_name, secret, limit, after)


def _encode_value(v: Any) -> list[Any]:
    if isinstance(v, datetime):
        return ["t", (v if v.tzinfo else v.replace(tzinfo=UTC)).astimezone(UTC).isoformat()]
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise TypeError(f"cannot put a {type(v).__name__} in a cursor")
    return ["s" if isinstance(v, str) else "i", v]


def _decode_value(item: Any) -> Any:
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        raise ValueError("not a tagged value")
    tag, v = item
    if tag == "t" and isinstance(v, str):
        dt = datetime.fromisoformat(v)
        if dt.tzinfo is None:
            raise ValueError("a naive time")
        return dt.astimezone(UTC)
    if tag == "s" and isinstance(v, str):
        return v
    if tag == "i" and isinstance(v, int) and not isinstance(v, bool):
        return v
    raise ValueError(f"unknown tag {tag!r}")


def encode_cursor(list_name: str, key: Sequence[Any], secret: bytes) -> str:
    """The opaque cursor for the row whose sort key is ``key`` in the list ``list_name``, signed with
    ``secret`` (URL-safe text)."""
    return str(URLSafeSerializer(secret, salt=_SALT).dumps({"l": list_name, "k": [_encode_value(v) for v in key]}))


def decode_cursor(cursor: str, list_name: str, secret: bytes) -> tuple[Any, ...]:
    """The sort key in ``cursor``; BadRequest (400) when it is not a cursor this service signed with ``secret``,
    or not one of ``list_name``."""
    bad = "the cursor is not one this service made (pass back the 'cursor' or 'next' of a previous page)"
    if not cursor or len(cursor) > _MAX_CURSOR or not cursor.isascii() or "\x00" in cursor:
        raise BadRequest(bad)
    try:
        data = URLSafeSerializer(secret, salt=_SALT).loads(cursor)
        if not isinstance(data, dict) or not isinstance(data.get("k"), list) or not data["k"]:
            raise ValueError("no key")
        key = tuple(_decode_value(v) for v in data["k"])
    except (BadSignature, ValueError, UnicodeDecodeError, RecursionError) as e:
        raise BadRequest(bad) from e
    if data.get("l") != list_name:
        raise BadRequest("the cursor was not made for this list; start again without it")
    return key


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order ``keys`` (lexicographic, each key in its own direction)."""
    clauses = []
    for i, k in enumerate(keys):
        col = k.column
        step = col < values[i] if k.descending else col > values[i]
        clauses.append(sa.and_(*[keys[j].column == values[j] for j in range(i)], step))
    return sa.or_(*clauses)


def paginate(session: Any, query: Any, keys: Sequence[SortKey], page: PageRequest) -> Page[Any]:
    """Run ``query`` (a ``select`` of one entity) ordered by ``keys``, from after ``page.after``, one page.

    The cursor of the next page is made from the last row's attribute values of the key columns (their
    ``.key`` on the row). BadRequest when the cursor's key does not fit the order (another list's shape)."""
    if page.after is not None:
        if len(page.after) != len(keys):
            raise BadRequest("the cursor was not made for this list; start again without it")
        query = query.where(_after(keys, page.after))
    order = [k.column.desc() if k.descending else k.column.asc() for k in keys]
    rows = list(session.exec(query.order_by(*order).limit(page.limit + 1)).all())
    more = len(rows) > page.limit
    rows = rows[:page.limit]
    cursor = None
    if more and rows:
        last = rows[-1]
        cursor = encode_cursor(page.list_name, [getattr(last, k.column.key) for k in keys], page.secret)
    return Page(rows, cursor)


def next_link(path: str, args: Mapping[str, str], page: Page[Any]) -> str | None:
    """The URL of the next page: ``path`` with the request's query and the new ``cursor`` (None at the end)."""
    if page.next_cursor is None:
        return None
    query = {k: v for k, v in args.items() if k != "cursor"}
    query["cursor"] = page.next_cursor
    return f"{path}?{urlencode(query)}"


E = TypeVar("E", bound=Enum)


def states_named(kind: type[E], state: object, words: Mapping[str | None, Sequence[E] | None], *,
                 error: type[GovernanceError] = InvalidInput) -> tuple[E, ...] | None:
    """The states a list's ``?state=`` filter names: one value of the enum ``kind``, or a word of ``words``
    standing for several states (a sequence of members) or for all of them (None); the parameter left out
    (``None``) or empty (``""``) is a word too where ``words`` names it. Returns None for "every state". Anything
    else raises ``error`` (422 :class:`~governance.errors.InvalidInput` unless told), naming what is accepted.

    >>> Light = Enum("Light", {"RED": "red", "AMBER": "amber", "GREEN": "green"})
    >>> states_named(Light, "stop", {"stop": [Light.RED, Light.AMBER], "all": None})
    (<Light.RED: 'red'>, <Light.AMBER: 'amber'>)
    >>> states_named(Light, "green", {None: None}), states_named(Light, None, {None: None})
    ((<Light.GREEN: 'green'>,), None)
    >>> states_named(Light, "blue", {None: None, "all": None})
    Traceback (most recent call last):
    ...
    governance.errors.InvalidInput: state must be one of ['red', 'amber', 'green', 'all'], got 'blue'
    """
    if (state is None or isinstance(state, str)) and state in words:
        chosen = words[state]
        return None if chosen is None else tuple(chosen)
    try:
        return (kind(state),)
    except ValueError as e:
        accepted = [s.value for s in kind] + [w for w in words if w]
        raise error(f"state must be one of {accepted}, got {state!r}") from e


def in_states(query: Any, column: Any, states: tuple[Enum, ...] | None) -> Any:
    """``query`` narrowed to the rows whose ``column`` holds one of ``states`` (:func:`states_named`; None: no
    narrowing)."""
    if states is None:
        return query
    if len(states) == 1:
        return query.where(column == states[0])
    return query.where(column.in_(list(states)))

"""Rights holders' characters: registration and the policy objects the gate screens prompts with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, select

from governance.audit import Tag, record
from governance.db import get_or_404
from governance.errors import Forbidden, InvalidInput, NotFound
from governance.models import Account, Character, Role
from governance.services.accounts import resolve_account
from policies.characters import CharacterPolicy, CharacterRule, PolicyError

MAX_ALIASES = 50


def create_character(
    session: Session, owner: Account, name: Any, aliases: Any, rule: Any, licensees: Any
) -> Character:
    if owner.role not in (Role.RIGHTS_HOLDER, Role.ADMIN):
        raise Forbidden("only rights holders may register characters")
    if not isinstance(name, str):
        raise InvalidInput("name must be a string")
    aliases = [] if aliases is None else aliases
    licensees = [] if licensees is None else licensees
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases) or len(aliases) > MAX_ALIASES:
        raise InvalidInput(f"aliases must be a list of at most {MAX_ALIASES} strings")
    if not isinstance(licensees, list) or not all(isinstance(a, str) for a in licensees):
        raise InvalidInput("licensees must be a list of account names or ids")
    try:
        rule_ = CharacterRule(rule)
    except ValueError as e:
        raise InvalidInput(f"rule must be one of {[r.value for r in CharacterRule]}, got {rule!r}") from e
    licensee_ids = []
    for ref in licensees:
        try:
            licensee_ids.append(resolve_account(session, ref).id)
        except NotFound as e:
            raise InvalidInput(f"unknown licensee account {ref!r}") from e
    try:
        CharacterPolicy("new", name, tuple(aliases), rule_, frozenset(licensee_ids))
    except PolicyError as e:
        raise InvalidInput(str(e)) from e
    ch = Character(owner_id=owner.id, name=name.strip(), aliases=[a.strip() for a in aliases], rule=rule_,
                   licensees=licensee_ids)
    session.add(ch)
    record(session, Tag.CHARACTER_CREATE, actor_id=owner.id, subject=ch.id, name=ch.name, rule=rule_.value)
    return ch


def get_character(session: Session, character_id: str) -> Character:
    return get_or_404(session, Character, character_id, "character")


def delete_character(session: Session, actor: Account, ch: Character) -> None:
    if ch.owner_id != actor.id and actor.role is not Role.ADMIN:
        raise Forbidden("only the rights holder who registered a character may delete it")
    session.delete(ch)
    record(session, Tag.CHARACTER_DELETE, actor_id=actor.id, subject=ch.id)


def list_characters(session: Session) -> Sequence[Character]:
    return session.exec(select(Character).order_by(Character.created_at)).all()  # type: ignore[arg-type]


def policies(session: Session) -> list[CharacterPolicy]:
    return [
        CharacterPolicy(c.id, c.name, tuple(c.aliases), CharacterRule(c.rule), frozenset(c.licensees))
        for c in list_characters(session)
    ]

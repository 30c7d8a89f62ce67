"""Rights-holder characters and prompt screening.

Names and aliases match case-, accent-, spacing- and punctuation-insensitively, on word boundaries:
"Spider-Man", "spider man" and "SPIDERMAN" all name the same character; "Oscars" does not name "Cars".

    >>> from policies.characters import CharacterPolicy, CharacterRule, screen_prompt
    >>> mouse = CharacterPolicy("ch1", "Steamboat Mouse", ("the mouse",), CharacterRule.DENY)
    >>> [d.allowed for d in screen_prompt("a STEAMBOAT-mouse dancing", [mouse], requester="bob")]
    [False]
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from policies.decisions import Allow, Decision, Deny

MAX_NAME_CHARS = 200


class CharacterRule(StrEnum):
    DENY = "deny"  # not at all
    LICENSEES_ONLY = "licensees_only"
    ALLOW = "allow"
    ATTRIBUTION = "attribution"  # anyone, if the release credits the rights holder (label and manifest)


MAX_ATTRIBUTION_CHARS = 60  # it must fit the visible label's second line


class PolicyError(ValueError):
    """A character definition that cannot be used."""


def normalize(text: str) -> tuple[str, ...]:
    """Lower-case, strip accents, split on anything that is not a letter or digit."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return tuple(t for t in re.split(r"[\W_]+", plain) if t)


@dataclass(frozen=True)
class CharacterPolicy:
    character_id: str
    name: str
    aliases: tuple[str, ...] = ()
    rule: CharacterRule = CharacterRule.DENY
    licensees: frozenset[str] = field(default_factory=frozenset)  # account ids allowed under licensees_only
    attribution: str = ""  # the credit a release must carry under the attribution rule
    unreadable: bool = False  # the stored definition could not be used: this deny rule stands in (see unreadable())

    def __post_init__(self) -> None:
        for label in (self.name, *self.aliases):
            if not isinstance(label, str) or not normalize(label):
                raise PolicyError(f"character names and aliases need a letter or digit, got {label!r}")
            if len(label) > MAX_NAME_CHARS:
                raise PolicyError(f"character names are at most {MAX_NAME_CHARS} characters, got {len(label)}")
        if not isinstance(self.rule, CharacterRule):
            raise PolicyError(f"rule must be one of {[r.value for r in CharacterRule]}, got {self.rule!r}")
        if self.rule is CharacterRule.ATTRIBUTION:
            text = self.attribution
            if not isinstance(text, str) or not text.strip() or not text.isprintable():
                raise PolicyError("the attribution rule needs the credit to show, as one printable line")
            if len(text) > MAX_ATTRIBUTION_CHARS:
                raise PolicyError(f"an attribution is at most {MAX_ATTRIBUTION_CHARS} characters, got {len(text)}")
        elif self.attribution:
            raise PolicyError(f"an attribution goes with the 'attribution' rule, not {self.rule.value!r}")

    def compact_names(self) -> frozenset[str]:
        return frozenset("".join(normalize(n)) for n in (self.name, *self.aliases))


def mentions(prompt: str, character: CharacterPolicy) -> str | None:
    """Return the name or alias the prompt uses for ``character``, if any (spacing-insensitive, whole words)."""
    tokens = normalize(prompt)
    wanted = character.compact_names()
    longest = max(len(w) for w in wanted)
    for i in range(len(tokens)):
        joined = ""
        for j in range(i, len(tokens)):
            joined += tokens[j]
            if len(joined) > longest:
                break
            if joined in wanted:
                return " ".join(tokens[i : j + 1])
    return None


def names_used(prompt: str, character: CharacterPolicy) -> frozenset[str]:
    """Every name or alias of ``character`` the prompt uses, in their compact form (as in
    :meth:`CharacterPolicy.compact_names`); empty when it names none. Unlike :func:`mentions`, never the
    prompt's own words: what the prompt said is not shown to anyone through this.

    >>> names_used("robo pup meets the ROBOPUP", CharacterPolicy("c", "Robo Pup", ("Pup Bot",)))
    frozenset({'robopup'})
    """
    tokens = normalize(prompt)
    wanted = character.compact_names()
    longest = max(len(w) for w in wanted)
    found = set()
    for i in range(len(tokens)):
        joined = ""
        for j in range(i, len(tokens)):
            joined += tokens[j]
            if len(joined) > longest:
                break
            if joined in wanted:
                found.add(joined)
    return frozenset(found)


def character_of(rule: str) -> str | None:
    """The character id a decision of :func:`screen_prompt` is about (its rule is
    ``character:<id>:<rule>``), or ``None`` for any other decision."""
    parts = rule.split(":")
    return parts[1] if len(parts) == 3 and parts[0] == "character" and parts[1] else None


def judge(ch: CharacterPolicy, requester: str, subject: str) -> Decision:
    """The character's rule applied to ``requester``; ``subject`` says how the character came up ("the
    prompt names 'X' ('x')", "the output shows 'X' (...)") and starts the reason."""
    if ch.unreadable:
        return Deny(f"{subject}, whose registered rule cannot be read; it is refused until its rights holder "
                    "registers it again", f"character:{ch.character_id}:unreadable")
    rule = f"character:{ch.character_id}:{ch.rule.value}"
    if ch.rule is CharacterRule.DENY:
        return Deny(f"{subject}, whose rights holder forbids its use", rule)
    if ch.rule is CharacterRule.LICENSEES_ONLY and requester not in ch.licensees:
        return Deny(f"{subject}, licensed to named licensees only", rule)
    if ch.rule is CharacterRule.ATTRIBUTION:
        return Allow(f"{subject}, which may be used when credited {ch.attribution!r}", rule)
    return Allow(f"{subject}, which the requester may use", rule)


def unreadable(character_id: str, labels: Iterable[object]) -> CharacterPolicy:
    """The policy that stands in for a character whose stored definition cannot be used: it fails closed
    for that character alone. It denies every requester under the labels that are still usable names; with
    none left, under the character id itself, which no prompt says by chance, so that in practice only a
    match on its reference images (by id) can involve it.

        >>> [d.allowed for d in screen_prompt("robo pup", [unreadable("ch1", ["!!!", "Robo Pup"])], "bob")]
        [False]
    """
    usable = [x for x in labels if isinstance(x, str) and normalize(x) and len(x) <= MAX_NAME_CHARS]
    name, *aliases = usable or [character_id]
    return CharacterPolicy(character_id, name, tuple(aliases), CharacterRule.DENY, unreadable=True)


def screen_prompt(prompt: str, characters: Iterable[CharacterPolicy], requester: str) -> list[Decision]:
    """One decision per registered character the prompt names; an empty list when it names none."""
    decisions: list[Decision] = []
    for ch in characters:
        said = mentions(prompt, ch)
        if said is not None:
            decisions.append(judge(ch, requester, f"the prompt names {ch.name!r} ({said!r})"))
    return decisions

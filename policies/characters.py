"""Rights-holder characters and prompt screening.

Names and aliases match case-, accent-, spacing- and punctuation-insensitively, on word boundaries:
"Spider-Man", "spider man" and "SPIDERMAN" all name the same character; "Oscars" does not name "Cars".
Disguised writings name it too: look-alike letters of other scripts, leetspeak, misspellings, plurals and
invisible characters (:mod:`policies.names` says which, and how far).

Compile the registered characters once into a :class:`CharacterMatcher`, then screen each prompt with it:

    >>> from policies.characters import CharacterMatcher, CharacterPolicy, CharacterRule
    >>> mouse = CharacterPolicy("ch1", "Steamboat Mouse", ("the mouse",), CharacterRule.DENY)
    >>> matcher = CharacterMatcher.build([mouse])
    >>> [d.allowed for d in matcher.screen("a STEAMBOAT-mouse dancing", requester="bob")]
    [False]
    >>> print(matcher.screen("two St3amboat Mouses dancing", requester="bob")[0].reason)
    the prompt names 'Steamboat Mouse' as 'St3amboat Mouses' (leetspeak; a plural), whose rights holder forbids its use
    >>> matcher.screen("a St\u0435amboat Mouse (Cyrillic e)", requester="bob")[0].disguises
    ('lookalike',)
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from media.errors import ConsentGateError
from policies.decisions import Allow, Decision, Deny
from policies.names import Disguise, Found, NameMatcher, words

MAX_NAME_CHARS = 200


class CharacterRule(StrEnum):
    DENY = "deny"  # not at all
    LICENSEES_ONLY = "licensees_only"
    ALLOW = "allow"
    ATTRIBUTION = "attribution"  # anyone, if the release credits the rights holder (label and manifest)


MAX_ATTRIBUTION_CHARS = 60  # it must fit the visible label's second line


class PolicyError(ConsentGateError, ValueError):
    """A character definition that cannot be used (a ``ValueError`` too, as before the common root)."""


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
            if not isinstance(label, str) or not normalize(label) or not words(label):
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


@dataclass(frozen=True)
class Mention:
    """A character a prompt names: by which of its names (``name``, the registered name or alias), written how
    (``found``: the prompt's own text, its offsets, and the disguises, see :class:`policies.names.Found`)."""

    character: CharacterPolicy
    name: str
    found: Found

    @property
    def subject(self) -> str:
        """How the reason of a decision about it starts: "the prompt names 'X' (alias 'y') as 'z' (a plural)"."""
        alias = f" (alias {self.name!r})" if self.name != self.character.name else ""
        text = f"the prompt names {self.character.name!r}{alias} as {self.found.form!r}"
        if self.found.disguises:
            which = {Disguise.LOOKALIKE: self.found.lookalikes, Disguise.INVISIBLE: self.found.invisible}
            parts = [" ".join([d.described, *(", ".join(which.get(d, ())),)]).strip() for d in self.found.disguises]
            text += f" ({'; '.join(parts)})"
        return text


class CharacterMatcher:
    """Every registered character's names and aliases compiled once (:class:`policies.names.NameMatcher`):
    build it when the set of characters changes, screen every prompt with it. Read-only once built.

    Screening costs about the same for 100 characters as for 100,000 (``python -m bench names``)."""

    def __init__(self, characters: tuple[CharacterPolicy, ...], owners: tuple[tuple[int, str], ...],
                 names: NameMatcher) -> None:
        self._characters = characters
        self._owners = owners  # per name of the NameMatcher: (character position, the name or alias)
        self._names = names

    @classmethod
    def build(cls, characters: Iterable[CharacterPolicy]) -> CharacterMatcher:
        characters = tuple(characters)
        owners = tuple((i, label) for i, ch in enumerate(characters) for label in (ch.name, *ch.aliases))
        return cls(characters, owners, NameMatcher.build(label for _, label in owners))

    def __len__(self) -> int:
        return len(self._characters)

    def mentions(self, prompt: str) -> list[Mention]:
        """One :class:`Mention` per character the prompt names (its plainest writing, then its first), in the
        order the characters were given; an empty list when it names none."""
        best: dict[int, Mention] = {}
        for found in self._names.find(prompt):
            i, label = self._owners[found.index]
            old = best.get(i)
            if old is None or (len(found.disguises), found.start) < (len(old.found.disguises), old.found.start):
                best[i] = Mention(self._characters[i], label, found)
        return [best[i] for i in sorted(best)]

    def screen(self, prompt: str, requester: str) -> list[Decision]:
        """One decision per character the prompt names (:func:`judge`), carrying the words as written
        (``matched``) and how they were disguised (``disguises``); an empty list when it names none."""
        return [judge(m.character, requester, m.subject, m.found.form, tuple(d.value for d in m.found.disguises))
                for m in self.mentions(prompt)]


def _compiled(characters: tuple[CharacterPolicy, ...]) -> CharacterMatcher:
    """The matcher for the one-call helpers below: kept for the last few short lists (a simulation screens
    thousands of past prompts against one rule), built afresh for long ones (a registry's matcher is the
    caller's to keep)."""
    return _compiled_short(characters) if len(characters) <= 16 else CharacterMatcher.build(characters)


@functools.lru_cache(maxsize=64)
def _compiled_short(characters: tuple[CharacterPolicy, ...]) -> CharacterMatcher:
    return CharacterMatcher.build(characters)


def mentions(prompt: str, character: CharacterPolicy) -> str | None:
    """The words the prompt names ``character`` with, folded and space-separated ("robo pup"), if it does."""
    found = _compiled((character,)).mentions(prompt)
    return found[0].found.phrase if found else None


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


def judge(ch: CharacterPolicy, requester: str, subject: str, matched: str = "",
          disguises: tuple[str, ...] = ()) -> Decision:
    """The character's rule applied to ``requester``; ``subject`` says how the character came up ("the
    prompt names 'X' as 'x'", "the output shows 'X' (...)") and starts the reason; ``matched`` and
    ``disguises`` are carried into the decision as they are. A character whose stored rule cannot be read
    (:func:`unreadable`) is refused to everyone."""
    if ch.unreadable:
        return Deny(f"{subject}, whose registered rule cannot be read; it is refused until its rights holder "
                    "registers it again", f"character:{ch.character_id}:unreadable", matched, disguises)
    rule = f"character:{ch.character_id}:{ch.rule.value}"
    if ch.rule is CharacterRule.DENY:
        return Deny(f"{subject}, whose rights holder forbids its use", rule, matched, disguises)
    if ch.rule is CharacterRule.LICENSEES_ONLY and requester not in ch.licensees:
        return Deny(f"{subject}, licensed to named licensees only", rule, matched, disguises)
    if ch.rule is CharacterRule.ATTRIBUTION:
        return Allow(f"{subject}, which may be used when credited {ch.attribution!r}", rule, matched, disguises)
    return Allow(f"{subject}, which the requester may use", rule, matched, disguises)


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
    """One decision per registered character the prompt names; an empty list when it names none.
    Compiles ``characters`` (the last few lists are kept): to screen many prompts against a large registry,
    build a :class:`CharacterMatcher` once and keep it."""
    return _compiled(tuple(characters)).screen(prompt, requester)

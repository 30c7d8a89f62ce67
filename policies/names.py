"""Finding names in prompts, written plainly or in disguise.

A :class:`NameMatcher` is compiled once from a list of names (for the gate: every registered character's
name and aliases) and then screens any number of prompts. A name is found however it is written:

- case, accents, punctuation and spacing: "spider-man", "SPIDERMAN", "C a p t a i n  C o m e t";
- invisible and compatibility characters: zero-width and tag characters, soft hyphens, combining marks,
  full-width and mathematical letters (removed, or folded by Unicode NFKD);
- look-alike letters of other scripts: "Cаptain Cоmet" with Cyrillic а and о (Unicode's confusable
  skeletons, UTS #39, as ICU computes them);
- leetspeak: "C4pt41n C0m3t" (digits and a few symbols read as the letters they stand for);
- misspellings: "Captian Comet" (see :data:`FUZZY_MIN_LETTERS` for which words may be misspelt, and how);
- plurals: "Captain Comets", "Spider-Men".

Words that merely occur in a prompt do not name anything: a name's words must all be there, in order and
next to each other, and a name starts and ends on word boundaries ("Oscars" does not name "Cars").

    >>> from policies.names import NameMatcher
    >>> m = NameMatcher.build(["Captain Comet", "Robo Pup"])
    >>> [(f.index, f.form, [d.value for d in f.disguises]) for f in m.find("C4pt41n C0m3t over the sea")]
    [(0, 'C4pt41n C0m3t', ['leetspeak'])]
    >>> [f.form for f in m.find("Captian Comet and a robo-pup")]
    ['Captian Comet', 'robo-pup']
    >>> m.find("a ship's captain watches a comet")
    []

How it stays fast (measured in ``docs/characters.md``, ``python -m bench names``): every name is compiled
into one Aho-Corasick automaton (pyahocorasick) over folded letters, so screening a prompt costs the same
for 100 names as for 100,000; misspellings are looked up in a sorted table of one-letter deletions
(symmetric deletion), checked with an edit distance (rapidfuzz). ``docs/adr/0005-name-matching-libraries.md``
says why these libraries.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple

import ahocorasick
import numpy as np
from rapidfuzz.distance import OSA

# -- the rules, and where their numbers come from -------------------------------------------------------------
# Calibration: ``tests/policies/data/disguised-names.json`` (917 disguised prompts, 338 benign near-misses;
# docs/characters.md). Each number below says what the set shows when it moves.
#: Words of a several-word name may be misspelt from this many letters on; shorter words must be exact. At 4 the
#: set blocks no more benign prompts and catches 9 more of its ``not_blocked_by_design`` swaps ("Nvoa Knight"),
#: but short English words swap into each other (from/form, calm/clam, used/sued): 5, as issue #11 asks.
FUZZY_MIN_LETTERS = 5
#: A one-word name may be misspelt from this many letters on, and only by a swap of neighbouring letters: alone,
#: its one word carries the whole proof (angel -> angle and casual -> causal are words, and one added letter
#: turns "glimmerwing" into "glimmering", which the set's benign prompts block; "glimmerwnig" is no word).
FUZZY_MIN_LETTERS_ALONE = 7
#: In a several-word name, a word shorter than this may be misspelt only by a swap of neighbouring letters
#: ("Captian"); from it on, by any one edit: a letter swapped, added, dropped or replaced ("Nightshde",
#: "Marauer"). At 5 the set's benign prompts block 6 more ("the captain comes home", "steamboat mousse cake");
#: at 6 and 7 none more, but English words of 6-7 letters one edit apart are common (planet/plane, mousse/mouse).
ANY_EDIT_FROM_LETTERS = 8
#: Leetspeak is read in names of this many letters or more, when at most this share of the name is written in
#: digits or symbols and every word written has a letter: "360" is a number, not "ego"; "3d" is not "ed";
#: "C4pt41n C0m3t" is 5 of 12, "5734mb047 M0u53" 10 of 14 (at 0.6 the set misses 8 heavy leetspeak prompts).
LEET_MIN_LETTERS = 3
LEET_MAX_SHARE = 0.75
#: The endings of a plural (or a verb's third person) after a name's last word: "Comets", "Foxes".
SUFFIXES = ("s", "es")
#: English plurals that are not made with an ending (the common ones; "-man" -> "-men", "-y" -> "-ies" and
#: "-f(e)" -> "-ves" are made by rule in :func:`_irregular_plurals`).
IRREGULAR_PLURALS = {"mouse": "mice", "louse": "lice", "goose": "geese", "foot": "feet", "tooth": "teeth",
                     "child": "children", "person": "people", "ox": "oxen", "cactus": "cacti", "fungus": "fungi"}
#: Punctuation that ends a phrase: the words on either side of it do not make one name ("thunder, squirrels
#: gather"), unless the name itself has it there ("Smith, Jr."). It is sentence punctuation (Unicode Po, and
#: dashes other than the hyphen) with white space next to it. Every other character between two words joins
#: them: spaces, hyphens, slashes, symbols, quotation marks and brackets around a word ('I love "crypto"',
#: "(I) (love) (crypto)"), and punctuation with no space at all ("I—love—crypto", "I,love"). A writing of three
#: words or more broken at EVERY word ("I, love, crypto", "I... love... crypto", "I: love: crypto") is a
#: disguise, not two phrases: it still names the name (see :func:`_cuts`).
_JOINING_PUNCTUATION = frozenset("'\"*/\\&#%@§¶†‡·-\u2010\u2011\u00ad")


def _ends_phrase(c: str) -> bool:
    return c not in _JOINING_PUNCTUATION and unicodedata.category(c) in ("Po", "Pd")


def _gap_breaks(gap: str) -> bool:
    """Whether the characters ``gap`` between two words end a phrase (see above)."""
    return any(c.isspace() for c in gap) and any(_ends_phrase(c) for c in gap)


def _cuts(text: str, spans: Sequence[tuple[int, int]]) -> frozenset[int]:
    """The positions n (1 .. len(spans) - 1) of the words ``spans`` (character offsets into ``text``) before
    which a phrase ends; none when three words or more are broken at every word (a disguise)."""
    cuts = frozenset(n for n in range(1, len(spans)) if _gap_breaks(text[spans[n - 1][1]:spans[n][0]]))
    if len(spans) >= 3 and len(cuts) == len(spans) - 1:
        return frozenset()
    return cuts


#: Digits and symbols read as letters ("leetspeak"). "1" and "|" stand for "i" or "l": the automaton reads
#: "l" as "i" too, and the check letter by letter keeps a written "l" from matching a name's "i".
LEET = {"4": "a", "@": "a", "3": "e", "€": "e", "0": "o", "1": "i", "!": "i", "|": "i", "5": "s", "$": "s",
        "7": "t", "+": "t", "8": "b", "9": "g", "6": "g", "2": "z"}
_DECODE = str.maketrans(LEET)
_REDUCE_MAP = {**LEET, "l": "i"}
_REDUCE = str.maketrans(_REDUCE_MAP)

# A word is a run of letters and digits (enclosed ones too: "ⓒⓞⓜⓔⓣ", "🅲🅾🅼🅴🆃"); a leetspeak symbol is a token
# of its own, used only when it touches a word.
_SYMBOLS = "@$!|+€"
_TOKEN = re.compile(r"(?:[^\W_]|[\u2460-\u24ff\U0001f100-\U0001f1ff])+|[@$!|+€]")
# Letters in boxes and regional indicators ("🅲", "🇨") that Unicode gives no decomposition: (first, last) -> "a".
_BOXED = ((0x1F150, 0x1F169), (0x1F170, 0x1F189), (0x1F1E6, 0x1F1FF))
# Letters that Unicode makes "default ignorable" (they show nothing) but Python counts as word characters.
_IGNORABLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")


class Disguise(StrEnum):
    """How a prompt's writing of a name differs from the name as registered."""

    SPACING = "spacing"  # the name's words broken into pieces: "C a p t a i n"
    INVISIBLE = "invisible"  # zero-width, soft hyphen, tag or other characters that show nothing
    MARKS = "marks"  # accents and other combining marks the name does not have
    COMPATIBILITY = "compatibility"  # full-width, mathematical, circled letters (Unicode NFKC folds them)
    LOOKALIKE = "lookalike"  # letters of another script that look like the name's (UTS #39 confusables)
    LEETSPEAK = "leetspeak"  # digits or symbols for letters
    TYPO = "typo"  # a misspelling
    INFLECTION = "inflection"  # a plural

    @property
    def described(self) -> str:
        return _DESCRIBED[self]


_DESCRIBED = {
    Disguise.SPACING: "broken-up spacing", Disguise.INVISIBLE: "invisible characters",
    Disguise.MARKS: "added marks", Disguise.COMPATIBILITY: "full-width or styled letters",
    Disguise.LOOKALIKE: "look-alike letters", Disguise.LEETSPEAK: "leetspeak", Disguise.TYPO: "a misspelling",
    Disguise.INFLECTION: "a plural",
}


@dataclass(frozen=True)
class Found:
    """One name found in a prompt.

    ``index`` is the name's position in the list given to :meth:`NameMatcher.build`; ``form`` is the prompt's
    own text for it (``prompt[start:end]``, offsets in characters); ``phrase`` its folded words, space-separated
    ("captain comet"); ``disguises`` how it differs from the name (empty for a plain writing); ``lookalikes`` and
    ``invisible`` name the look-alike and invisible characters it holds ("U+0430 CYRILLIC SMALL LETTER A").
    """

    index: int
    form: str
    phrase: str
    start: int
    end: int
    disguises: tuple[Disguise, ...] = ()
    lookalikes: tuple[str, ...] = ()
    invisible: tuple[str, ...] = ()


# -- folding ------------------------------------------------------------------------------------------------------
_skeleton_lock = threading.Lock()
_spoof: Any = None


def _skeleton(text: str) -> str:
    """UTS #39 skeleton of ``text`` (ICU's SpoofChecker)."""
    global _spoof
    with _skeleton_lock:
        if _spoof is None:
            import icu

            _spoof = icu.SpoofChecker()
        return str(_spoof.getSkeleton(0, text))


def _strip_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _is_joiner(c: str) -> bool:
    """Characters that show nothing (or only change the letter before): they never separate words."""
    return c >= "\x80" and (unicodedata.category(c) in ("Mn", "Me", "Cf") or c in _IGNORABLE_LETTERS)


def _fold_char(c: str) -> str:
    """One non-ASCII character of a word, folded: nothing for a mark or an invisible character; the ASCII letters
    of its compatibility decomposition (NFKD) when they are all it holds ("Ｃ", "𝐂", "é" -> "c", "e"); else the
    lower-case ASCII letters of its confusable skeleton (UTS #39) in either case ("а" -> "a", "Т" -> "t",
    "Ϲ" -> "c", "ß" -> "ss"); else its decomposition folded the same way; else the character case-folded."""
    if _is_joiner(c):
        return ""
    for first, last in _BOXED:
        if first <= ord(c) <= last:
            return chr(ord("a") + ord(c) - first)
    decomposed = _strip_marks(unicodedata.normalize("NFKD", c))
    if decomposed.isascii():
        return "".join(_FOLD[ord(x)] for x in decomposed)
    for variant in (c, c.upper()):
        skeleton = _strip_marks(_skeleton(variant)).casefold()
        if skeleton and skeleton.isascii() and skeleton.isalnum():
            # UTS #39's prototypes write "m" as "rn" and capital I as "l": one glyph that looks like "rn" is an
            # "m", and a capital that looks like "I" ("Ι", Greek iota) an "i"
            if skeleton == "rn":
                return "m"
            return "i" if skeleton == "l" and variant != variant.casefold() else skeleton
    if decomposed != c:
        return "".join(_FOLD[ord(x)] if x.isascii() else _fold_char(x) for x in decomposed)
    folded = c.casefold()
    return folded if folded.isalnum() else ""


class _FoldTable(dict[int, str]):
    """``str.translate`` table of :func:`_fold_char`, filled on first sight of each code point."""

    def __missing__(self, cp: int) -> str:
        value = _fold_char(chr(cp))
        self[cp] = value
        return value


_FOLD = _FoldTable({cp: chr(cp).lower() if chr(cp).isalnum() else "" for cp in range(128)})


def fold(word: str) -> str:
    """A word folded for matching: case, accents, invisible characters, compatibility forms and look-alike
    letters removed (:func:`_fold_char` per character). ASCII words are only lower-cased, so ASCII digits stay
    digits (leetspeak reads them later)."""
    if word.isascii():
        return word.lower()
    return word.translate(_FOLD)


class _Token(NamedTuple):
    start: int
    end: int
    folded: str
    symbol: bool  # a leetspeak symbol ("@"), used only in the reading that takes symbols as letters


def _tokens(text: str) -> list[_Token]:
    """The words of ``text`` (runs of letters and digits, joined across invisible characters and marks) and the
    leetspeak symbols that touch a word; words that fold to nothing are dropped."""
    raw: list[list[Any]] = []  # [start, end, is_symbol]
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        symbol = text[start] in _SYMBOLS
        if raw and not symbol and not raw[-1][2]:
            gap = text[raw[-1][1]:start]
            if all(_is_joiner(c) for c in gap):
                raw[-1][1] = end
                continue
        raw.append([start, end, symbol])
    out: list[_Token] = []
    for i, (start, end, symbol) in enumerate(raw):
        if symbol:
            touches = (i > 0 and raw[i - 1][1] == start and not raw[i - 1][2]) or \
                      (i + 1 < len(raw) and raw[i + 1][0] == end and not raw[i + 1][2])
            if touches:
                out.append(_Token(start, end, text[start:end], True))
            continue
        folded = fold(text[start:end])
        if folded:
            out.append(_Token(start, end, folded, False))
    return out


def words(text: str) -> tuple[str, ...]:
    """The folded words of ``text``: ``words("Cаptain  COMET!") == ("captain", "comet")``."""
    return tuple(t.folded for t in _tokens(text) if not t.symbol)


# -- compiling ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Entry:
    """A name as the matcher holds it (a plural form of a name is an entry of its own)."""

    index: int
    folded: str  # the words joined, folded
    tokens: tuple[str, ...]  # the words, folded and leetspeak-decoded
    inflected: bool
    breaks: frozenset[int] = frozenset()  # the words before which the name has a phrase break (see _cuts)

    def break_offsets(self) -> frozenset[int]:
        """The same breaks as offsets into :attr:`folded`."""
        return frozenset(sum(len(t) for t in self.tokens[:i]) for i in self.breaks)


def _irregular_plurals(tokens: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Plural forms of a name that adding "s" or "es" does not make: Spider-Man -> Spider-Men, Pixy -> Pixies,
    Elf -> Elves."""
    *head, last = tokens
    forms = [IRREGULAR_PLURALS[last]] if last in IRREGULAR_PLURALS else []
    if last.endswith("man"):
        forms.append(last[:-3] + "men")
    if len(last) > 1 and last.endswith("y") and last[-2] not in "aeiou":
        forms.append(last[:-1] + "ies")
    if last.endswith("fe"):
        forms.append(last[:-2] + "ves")
    elif last.endswith("f"):
        forms.append(last[:-1] + "ves")
    return [(*head, f) for f in forms]


def _variants(word: str) -> set[str]:
    """``word`` and every way to drop one letter from it (symmetric deletion: two words one edit apart share one)."""
    return {word, *(word[:i] + word[i + 1:] for i in range(len(word)))}


@functools.lru_cache(maxsize=1 << 16)
def _variant_hashes(word: str) -> tuple[int, ...]:
    """The hashes of :func:`_variants` (a prompt's words repeat from prompt to prompt: kept for the most recent)."""
    return tuple(hash(v) for v in _variants(word))


def _swapped(q: str, t: str) -> bool:
    """``q`` is ``t`` with two neighbouring letters swapped."""
    if len(q) != len(t) or q == t:
        return False
    diff = [i for i in range(len(t)) if q[i] != t[i]]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and q[diff[0]] == t[diff[1]] and q[diff[1]] == t[diff[0]]


def _misspelt(q: str, t: str, alone: bool) -> bool:
    """``q`` is a misspelling of the name word ``t`` under the rules above (``alone``: a one-word name)."""
    if q == t or len(t) < (FUZZY_MIN_LETTERS_ALONE if alone else FUZZY_MIN_LETTERS):
        return False
    if alone or len(t) < ANY_EDIT_FROM_LETTERS:
        return _swapped(q, t)
    return bool(OSA.distance(q, t, score_cutoff=1) <= 1)


def _leet_share(folded: str) -> float:
    return sum(c in LEET for c in folded) / max(1, len(folded))


class NameMatcher:
    """Every name of a list, compiled for screening prompts. Build it once per list (:meth:`build`), then call
    :meth:`find` for each prompt. Safe to share between threads: after building it only remembers what the
    prompt words it has seen misspell.

    Names that fold to no word at all are skipped (:class:`policies.characters.CharacterPolicy` refuses them)."""

    def __init__(self, names: list[str], entries: list[_Entry], automaton: Any, fuzzy_keys: np.ndarray,
                 fuzzy_vocab: np.ndarray, vocab: list[str], alone: list[list[tuple[int, int]]],
                 pairs: dict[tuple[str, str], list[tuple[int, int]]]) -> None:
        self._names = names
        self._entries = entries
        self._automaton = automaton  # folded, leetspeak-reduced names -> (length, entry ids)
        self._fuzzy_keys = fuzzy_keys  # sorted hashes of the misspellable words and their one-letter deletions
        self._fuzzy_vocab = fuzzy_vocab  # ... and the word (its position in vocab) each hash belongs to
        self._vocab = vocab
        self._alone = alone  # per vocab word: (entry, -1) where it is the whole name as one word, (entry, 0) where
        # it is the one word of a one-word name
        self._pairs = pairs  # (word, next word) -> (entry, position of word) for every several-word name
        self._near_cache: dict[str, tuple[tuple[tuple[int, int], ...], frozenset[str]]] = {}

    @classmethod
    def build(cls, names: Iterable[str]) -> NameMatcher:
        """Compile ``names`` (any strings; the position of each is the ``index`` of what :meth:`find` returns)."""
        names = list(names)
        entries: list[_Entry] = []
        for i, name in enumerate(names):
            tokens = [t for t in _tokens(name) if not t.symbol]
            folded = tuple(t.folded for t in tokens)
            if not folded:
                continue
            breaks = _cuts(name, [(t.start, t.end) for t in tokens])
            for form, inflected in [(folded, False), *((p, True) for p in _irregular_plurals(folded))]:
                entries.append(_Entry(i, "".join(form), tuple(w.translate(_DECODE) for w in form), inflected,
                                      breaks))

        by_key: dict[str, list[int]] = {}
        for e, entry in enumerate(entries):
            by_key.setdefault(entry.folded.translate(_REDUCE), []).append(e)
        automaton = ahocorasick.Automaton()
        for key, ids in by_key.items():
            automaton.add_word(key, (len(key), tuple(ids)))
        if by_key:
            automaton.make_automaton()

        vocab_ids: dict[str, int] = {}
        alone: list[list[tuple[int, int]]] = []
        pairs: dict[tuple[str, str], list[tuple[int, int]]] = {}

        def word_id(word: str) -> int:
            v = vocab_ids.setdefault(word, len(vocab_ids))
            if v == len(alone):
                alone.append([])
            return v

        for e, entry in enumerate(entries):
            words_ = entry.tokens
            if len(words_) == 1:
                if len(words_[0]) >= FUZZY_MIN_LETTERS_ALONE:
                    alone[word_id(words_[0])].append((e, 0))
                continue
            for j, word in enumerate(words_):
                if len(word) >= FUZZY_MIN_LETTERS:
                    word_id(word)
                if j + 1 < len(words_):
                    pairs.setdefault((word, words_[j + 1]), []).append((e, j))
            compact = "".join(words_)
            if len(compact) >= ANY_EDIT_FROM_LETTERS:
                alone[word_id(compact)].append((e, -1))  # the whole name written as one word: "Spdierman"
        vocab = list(vocab_ids)
        variants = [_variants(word) for word in vocab]
        keys = np.fromiter((hash(v) for vs in variants for v in vs), dtype=np.int64)
        owners = np.repeat(np.arange(len(vocab), dtype=np.int64), [len(vs) for vs in variants])
        del variants
        order = np.argsort(keys, kind="stable")
        return cls(names, entries, automaton if by_key else None, keys[order], owners[order], vocab, alone, pairs)

    def __len__(self) -> int:
        return len(self._names)

    # -- screening ----------------------------------------------------------------------------------------------
    def find(self, prompt: str) -> list[Found]:
        """Every name of the list that ``prompt`` writes, at most one :class:`Found` per name (a plain writing
        before a disguised one, then the first), in the order of the names."""
        tokens = _tokens(prompt)
        if not tokens or (self._automaton is None and not len(self._fuzzy_keys)):
            return []
        best = _Best()
        keep = best
        if self._automaton is not None:
            self._find_exact(prompt, tokens, [i for i, t in enumerate(tokens) if not t.symbol], keep)
            if any(t.symbol for t in tokens):
                self._find_exact(prompt, tokens, list(range(len(tokens))), keep)
        self._find_misspelt(prompt, tokens, keep)
        return [best.found[i] for i in sorted(best.found)]

    def _find_exact(self, prompt: str, tokens: list[_Token], use: list[int], keep: _Best) -> None:
        offsets: list[int] = []
        at = 0
        for i in use:
            offsets.append(at)
            at += len(tokens[i].folded)
        folded = "".join(tokens[i].folded for i in use)
        reduced = folded.translate(_REDUCE)
        first = {o: k for k, o in enumerate(offsets)}
        for last_char, (length, ids) in self._automaton.iter(reduced):
            start = last_char - length + 1
            k = first.get(start)
            if k is None:
                continue
            k2 = bisect.bisect_right(offsets, last_char) - 1
            token_end = offsets[k2] + len(tokens[use[k2]].folded)
            rest = reduced[last_char + 1:token_end]
            if rest and rest not in SUFFIXES:
                continue
            written = folded[start:last_char + 1]
            span = use[k:k2 + 1]
            cut = {offsets[k + n] - start for n in _cuts(prompt, [(tokens[i].start, tokens[i].end) for i in span])}
            for e in ids:
                entry = self._entries[e]
                if keep.settled(entry.index):
                    continue
                leet = _leet_letters(written, entry.folded)
                if leet is None or (cut and not cut <= entry.break_offsets()):
                    continue
                if leet and (len(entry.folded) < LEET_MIN_LETTERS or leet / len(entry.folded) > LEET_MAX_SHARE
                             or not all(any(c.isalpha() for c in tokens[i].folded) for i in span
                                        if not tokens[i].symbol)):
                    continue
                extra = ((Disguise.LEETSPEAK,) if leet else ()) + \
                        ((Disguise.INFLECTION,) if rest or entry.inflected else ())
                if not (extra and keep.settled(entry.index, tokens[span[0]].start)):
                    keep(self._found(prompt, tokens, span, entry, extra))

    def _find_misspelt(self, prompt: str, tokens: list[_Token], keep: _Best) -> None:
        if not len(self._fuzzy_keys):
            return
        word_ids = [i for i, t in enumerate(tokens) if not t.symbol]
        decoded = [tokens[i].folded.translate(_DECODE) for i in word_ids]
        near: dict[int, frozenset[str]] = {}  # prompt word -> the several-word names' words it misspells
        for p, i in enumerate(word_ids):
            folded = tokens[i].folded
            if len(folded) < FUZZY_MIN_LETTERS - 1 or folded.isdigit() or \
                    not folded.isalpha() and _leet_share(folded) > LEET_MAX_SHARE:
                continue
            whole, words_ = self._misspellings(decoded[p])
            for whole_entry, _ in whole:
                if not keep.settled(self._entries[whole_entry].index, tokens[i].start):
                    keep(self._found(prompt, tokens, [i], self._entries[whole_entry], (Disguise.TYPO,)))
            if words_:
                near[p] = words_
        tried: set[tuple[int, int]] = set()
        for p, misspelt in near.items():
            for word in misspelt:
                # the name's neighbouring word, as the prompt writes it: exactly, misspelt, or (after) in plural
                for q, after in ((p + 1, True), (p - 1, False)):
                    if not 0 <= q < len(decoded):
                        continue
                    readings = {decoded[q], *near.get(q, ())}
                    if after:
                        readings |= {decoded[q][:-len(sfx)] for sfx in SUFFIXES if decoded[q].endswith(sfx)}
                    for r in readings:
                        for e, j in self._pairs.get((word, r) if after else (r, word), ()):
                            start = p - j if after else p - j - 1
                            if (e, start) not in tried:
                                tried.add((e, start))
                                self._align(prompt, tokens, word_ids, decoded, e, start, keep)

    def _misspellings(self, word: str) -> tuple[tuple[tuple[int, int], ...], frozenset[str]]:
        """What the prompt word ``word`` (folded, leetspeak-decoded) misspells: whole names ((entry, -1) written
        as one word, (entry, 0) one-word names) and words of several-word names. Kept per word (prompts repeat
        their words), up to :data:`_NEAR_CACHE` words."""
        cached = self._near_cache.get(word)
        if cached is not None:
            return cached
        keys = self._fuzzy_keys
        hashed = np.sort(np.asarray(_variant_hashes(word), dtype=np.int64))
        lo = np.minimum(np.searchsorted(keys, hashed, "left"), len(keys) - 1)
        hits = np.flatnonzero(keys[lo] == hashed)
        vocab: set[int] = set()
        if len(hits):
            hi = np.searchsorted(keys, hashed[hits], "right")
            for n, end in zip(hits, hi, strict=True):
                vocab.update(int(v) for v in self._fuzzy_vocab[lo[n]:end])
        whole: list[tuple[int, int]] = []
        words_: set[str] = set()
        for v in vocab:
            name_word = self._vocab[v]
            if name_word == word:
                continue  # written exactly: the automaton's
            for e, j in self._alone[v]:
                if j < 0 and OSA.distance(word, name_word, score_cutoff=1) == 1 or \
                        j == 0 and _misspelt(word, name_word, alone=True):
                    whole.append((e, j))
            if _misspelt(word, name_word, alone=False):
                words_.add(name_word)
        result = (tuple(sorted(whole)), frozenset(words_))
        if len(self._near_cache) >= _NEAR_CACHE:
            self._near_cache.clear()
        self._near_cache[word] = result
        return result

    def _align(self, prompt: str, tokens: list[_Token], word_ids: list[int], decoded: list[str], e: int,
               start: int, keep: _Best) -> None:
        """Whether the several-word name ``e`` is written, one misspelt word or more, from prompt word ``start``."""
        entry = self._entries[e]
        n_words = len(entry.tokens)
        if start < 0 or start + n_words > len(decoded) or \
                keep.settled(entry.index, tokens[word_ids[start]].start):
            return
        spans = [(tokens[word_ids[start + i]].start, tokens[word_ids[start + i]].end) for i in range(n_words)]
        if not _cuts(prompt, spans) <= entry.breaks:
            return
        inflected, misspelt = entry.inflected, False
        for i, t in enumerate(entry.tokens):
            d = decoded[start + i]
            if d == t:
                continue
            if _misspelt(d, t, alone=False):
                misspelt = True
                continue
            stem = next((d[:-len(sfx)] for sfx in SUFFIXES if d.endswith(sfx)), None)
            if i == n_words - 1 and stem is not None and (stem == t or _misspelt(stem, t, alone=False)):
                inflected, misspelt = True, misspelt or stem != t
                continue
            return
        if misspelt:
            extra = (Disguise.TYPO,) + ((Disguise.INFLECTION,) if inflected else ())
            keep(self._found(prompt, tokens, word_ids[start:start + n_words], entry, extra))

    def _found(self, prompt: str, tokens: list[_Token], span: Sequence[int], entry: _Entry,
               extra: tuple[Disguise, ...]) -> Found:
        start, end = tokens[span[0]].start, tokens[span[-1]].end
        name = self._names[entry.index]
        written = "".join(prompt[tokens[i].start:tokens[i].end] for i in span)
        pieces = 1 + sum(tokens[a].end < tokens[b].start for a, b in zip(span, span[1:], strict=False))
        kinds, lookalikes, invisible = _disguises(written, name, pieces, len(entry.tokens))
        order = list(Disguise)
        return Found(entry.index, prompt[start:end], " ".join(tokens[i].folded for i in span), start, end,
                     tuple(sorted({*kinds, *extra}, key=order.index)), lookalikes, invisible)


_NEAR_CACHE = 1 << 16  # prompt words whose misspellings a matcher remembers


class _Best:
    """The best writing found so far of each name: a plain one before a disguised one, then the first."""

    def __init__(self) -> None:
        self.found: dict[int, Found] = {}

    def settled(self, index: int, start: int | None = None) -> bool:
        """Nothing found can beat what is kept: a plain writing, or (for a writing known to be disguised, that
        starts at ``start``) one that starts no later."""
        kept = self.found.get(index)
        return kept is not None and (not kept.disguises or start is not None and kept.start <= start)

    def __call__(self, found: Found) -> None:
        kept = self.found.get(found.index)
        if kept is None or (len(found.disguises), found.start) < (len(kept.disguises), kept.start):
            self.found[found.index] = found


def _leet_letters(written: str, name: str) -> int | None:
    """How many of ``written``'s characters are leetspeak for ``name``'s, or None when a letter differs."""
    if len(written) != len(name):
        return None
    leet = 0
    for w, n in zip(written, name, strict=True):
        if w == n:
            continue
        if w in LEET and n.isalpha() and _REDUCE_MAP[w] == _REDUCE_MAP.get(n, n):
            leet += 1
            continue
        return None
    return leet


def _described(c: str) -> str:
    return f"U+{ord(c):04X} {unicodedata.name(c, '(unnamed)')}"


def _disguises(written: str, name: str, pieces: int, name_words: int
               ) -> tuple[set[Disguise], tuple[str, ...], tuple[str, ...]]:
    """The disguises visible in the characters themselves (the matcher adds leetspeak, typos and plurals), the
    look-alike characters and the invisible ones, described. ``pieces``: how many pieces the prompt's writing
    is in (separated by anything but invisible characters)."""
    kinds: set[Disguise] = set()
    if pieces > name_words + 1:
        kinds.add(Disguise.SPACING)
    invisible = sorted({c for c in written if _is_joiner(c) and not unicodedata.combining(c)})
    if invisible:
        kinds.add(Disguise.INVISIBLE)
    own_marks = {c for c in unicodedata.normalize("NFD", name) if unicodedata.combining(c)}
    if any(unicodedata.combining(c) and c not in own_marks for c in unicodedata.normalize("NFD", written)):
        kinds.add(Disguise.MARKS)
    visible = "".join(c for c in written if not _is_joiner(c))
    if unicodedata.normalize("NFKC", visible) != unicodedata.normalize("NFC", visible):
        kinds.add(Disguise.COMPATIBILITY)
    own = set(name.casefold())
    lookalikes = sorted({c for c in visible if not c.isascii() and c.casefold() not in own
                         and _FOLD[ord(c)] != "" and _FOLD[ord(c)].isascii()
                         and not _strip_marks(unicodedata.normalize("NFKD", c)).isascii()})
    if lookalikes:
        kinds.add(Disguise.LOOKALIKE)
    return kinds, tuple(map(_described, lookalikes)), tuple(map(_described, invisible))

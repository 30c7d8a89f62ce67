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
    reason: str
    rule: str = ""

    @property
    def allowed(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"decision": "allow", "reason": self.reason, "rule": self.rule}


@dataclass(frozen=True)
class Deny:
    reason: str
    rule: str = ""

    @property
    def allowed(self) -> bool:
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"decision": "deny", "reason": self.reason, "rule": self.rule}


Decision = Allow | Deny


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

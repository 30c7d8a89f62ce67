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
from typing import Any, ClassVar


@dataclass(frozen=True)
class _Outcome:
    """``matched``: the input's own words the rule fired on, as written (a prompt's "Cаptain Cоmet"); ``disguises``:
    how they differ from the rule's words (:class:`policies.names.Disguise` values). Both empty when unused."""

    OUTCOME: ClassVar[str] = ""

    reason: str
    rule: str = ""
    matched: str = ""
    disguises: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.OUTCOME == "allow"

    def to_dict(self) -> dict[str, Any]:
        """``{"decision", "reason", "rule"}``, with ``matched`` and ``disguises`` only when there are any."""
        out: dict[str, Any] = {"decision": self.OUTCOME, "reason": self.reason, "rule": self.rule}
        if self.matched:
            out["matched"] = self.matched
        if self.disguises:
            out["disguises"] = list(self.disguises)
        return out


@dataclass(frozen=True)
class Allow(_Outcome):
    """A rule permits it, and why (the fields of every decision: :class:`_Outcome`)."""

    OUTCOME: ClassVar[str] = "allow"


@dataclass(frozen=True)
class Deny(_Outcome):
    """As :class:`Allow`, with the opposite outcome."""

    OUTCOME: ClassVar[str] = "deny"


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

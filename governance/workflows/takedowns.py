"""A video taken down by one of its owners, a minor's guardian or an admin, all the way: the generations'
services mark it down and audit it; the takedown notices about it still in the review queue close
(:func:`governance.notices.timeline.close_on_takedown`); the remix lineage follows
(:func:`governance.remix.services.withdraw`: a likeness owner's takedown withdraws their faces from the remixes);
then an admin's reason is told to everyone involved. No Flask here; nothing commits.

A takedown notice's own takedown is :mod:`governance.notices.services`' (it follows the lineage the same way).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from governance.accounts.models import Account
from governance.generations.models import Generation
from governance.generations.services import generations as generations_svc
from governance.notices.timeline import close_on_takedown
from governance.remix.services import withdraw

__all__ = ["take_down"]


def take_down(session: Session, actor: Account, gen: Generation, reason: Any = None) -> bool:
    """Take ``gen`` down (:func:`governance.generations.services.generations.take_down`: who may, and the
    ``reason`` an admin must give; 403/404/422 as it says). Returns True when this call changed something.

    The stored files (``gen``'s and the remixes' the lineage took down) are the caller's to remove after the
    commit (:func:`governance.remix.services.sweep_withdrawn_files`)."""
    done = generations_svc.take_down(session, actor, gen, reason)
    if done is None:
        return False
    close_on_takedown(session, gen, done.by)
    withdraw(session, actor, gen, reason=f"taken down{': ' + done.reason if done.reason else ''}",
             faces=generations_svc.faces_owned_by(session, actor, gen))
    generations_svc.tell_takedown(session, actor, gen, done)
    return True

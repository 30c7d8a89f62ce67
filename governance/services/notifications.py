"""Notifications to account holders (every use of their likeness, released or blocked)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, select

from governance.models import Notification

#: Kinds of notification a minor's guardian gets a copy of (every use of the minor's likeness, and takedowns).
GUARDIAN_COPIES = ("likeness:use", "generation:takedown")


def notify(session: Session, account_id: str, kind: str, message: str, *, generation_id: str | None = None,
           likeness_id: str | None = None) -> None:
    session.add(Notification(account_id=account_id, kind=kind, message=message, generation_id=generation_id,
                             likeness_id=likeness_id))
    if kind.startswith(GUARDIAN_COPIES):
        from governance.guardians.models import Guardianship

        row = session.get(Guardianship, account_id)
        if row is not None and row.guardian_id:
            session.add(Notification(account_id=row.guardian_id, kind=f"guardian:{kind}",
                                     message=f"(about your ward) {message}", generation_id=generation_id,
                                     likeness_id=likeness_id))


def list_for(session: Session, account_id: str, *, unread_only: bool = False,
             limit: int = 100) -> Sequence[Notification]:
    q = select(Notification).where(Notification.account_id == account_id)
    if unread_only:
        q = q.where(Notification.read_at == None)  # noqa: E711
    return session.exec(q.order_by(Notification.created_at.desc()).limit(limit)).all()  # type: ignore[attr-defined]

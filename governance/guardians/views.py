"""HTTP views of the guardians domain: an admin links a minor's account to its guardian's; the guardian answers
the minor's grant requests."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from governance.authz import Action
from governance.guardians import schemas as s
from governance.guardians import services as guardians_svc
from governance.guardians.models import Guardianship
from governance.openapi import PageQuery, operation
from governance.remix import services as remix_svc
from governance.web import caller, db, guard, json_body, page_request, page_response, runtime
from governance.workflows import withdrawals

bp = Blueprint("guardians", __name__)  # nested in the v1 blueprint: /v1/...


@bp.put("/accounts/<ref>/guardian")
@guard(Action.GUARDIAN_LINK)
@operation(ok={200: s.GuardianshipOut}, json=s.GuardianLink, errors=[409], tags=["guardians"])
def link_guardian(ref: str) -> Response:
    """``{"guardian": name}``: the account is a minor's, linked to that guardian (its likenesses open to everyone
    or mutuals become ``approved``)."""
    body = json_body("guardian")
    return jsonify(guardians_svc.guardianship_view(link_guardian_of(ref, body.get("guardian")), db()))


def link_guardian_of(ref: str, guardian: Any) -> Guardianship:
    """Mark ``ref``'s account a minor's, linked to ``guardian`` (a name or id), by the caller (an admin),
    committed; the files of the remixes its suspended grants took down are deleted. Refusals as
    :func:`governance.guardians.services.mark_minor`'s (404, 422, 403). The API's view and the admin page's."""
    row = withdrawals.mark_minor(db(), caller(), ref, guardian)
    db().commit()
    remix_svc.sweep_withdrawn_files(db(), runtime().settings.videos_dir)  # remixes its suspended grants took down
    return row


@bp.delete("/accounts/<ref>/guardian")
@guard(Action.GUARDIAN_UNLINK)
@operation(ok={200: s.GuardianshipOut}, errors=[409], tags=["guardians"])
def unlink_guardian(ref: str) -> Response:
    row = guardians_svc.unlink(db(), caller(), ref)
    db().commit()
    return jsonify(guardians_svc.guardianship_view(row, db()))


@bp.post("/accounts/<ref>/majority")
@guard(Action.MINORITY_END)
@operation(ok={200: s.MajorityOut}, json=s.MajorityIn, tags=["guardians"])
def end_minority(ref: str) -> Response:
    """``{"reason": "how the holder's age was checked"}``: the account is no longer a minor's."""
    body = json_body("reason")
    account = guardians_svc.end_minority(db(), caller(), ref, body.get("reason"))
    db().commit()
    return jsonify({"account": account.id, "minor": False, "guardian": None})


@bp.get("/guardian/approvals")
@guard(Action.GUARDIAN_APPROVALS)
@operation(ok={200: s.GuardianApprovalPage}, query=PageQuery, tags=["guardians"])
def approvals() -> Response:
    """The grants your wards asked for, waiting for you; oldest first, paged (``limit``, ``cursor``; ``next``)."""
    me_ = caller()
    page = guardians_svc.page_pending_for(db(), me_, page_request(f"guardian-approvals:{me_.id}"))
    return page_response("approvals", page, lambda a: guardians_svc.view(a, db()))


@bp.post("/guardian/approvals/<approval_id>")
@guard(Action.GUARDIAN_DECIDE)
@operation(ok={200: s.GuardianApprovalOut}, json=s.GuardianDecision, errors=[409], tags=["guardians"])
def decide(approval_id: str) -> Response:
    """``{"decision": "approve"|"deny"}``: approving makes the grant."""
    body = json_body("decision")
    a = guardians_svc.decide(db(), caller(), approval_id, body.get("decision"))
    db().commit()
    return jsonify(guardians_svc.view(a, db()))

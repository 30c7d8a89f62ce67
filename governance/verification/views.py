"""HTTP API v1, verification: anyone uploads a video or image and gets its verification report (nothing uploaded is
kept). Rate-limited per client and admitted by the expensive-work slots (:mod:`governance.admission`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, jsonify, request

from governance import admission
from governance.authz import Action
from governance.errors import InvalidInput, RateLimited
from governance.openapi import operation
from governance.ratelimit import retry_after
from governance.uploads import media_kind
from governance.verification import schemas as s
from governance.verification import services as verification_svc
from governance.web import db, guard, optional_caller, refuse_unknown_form_fields, runtime, uploaded_blobs

if TYPE_CHECKING:
    from media.limits import Meter

bp = Blueprint("verification", __name__)  # nested in the v1 blueprint (governance.app): /v1/...


@bp.post("/verify")
@guard(Action.VERIFY)
@operation(ok={200: s.ReportOut}, form=s.VerifyForm, errors=[415, 429, 503], tags=["verification"])
def verify() -> Response:
    return jsonify(verify_upload(uploaded_blobs))


def verify_upload(read: Callable[[], list[bytes]]) -> dict[str, Any]:
    """The report of the one file ``read()`` returns, for the caller :func:`~governance.web.guard` (or a page's
    guard) admitted: rate-limited per client, read and checked inside an expensive-work slot. Raises
    ``RateLimited`` (429), ``InvalidInput`` (422) for no file or several, and what :func:`report_of` raises."""
    account = optional_caller()  # anyone may verify; a token, if sent, must be valid (guard checked it)
    client = f"account:{account.id}" if account else f"addr:{request.remote_addr}"
    rt = runtime()
    wait = rt.throttles.verify.acquire(client)
    if wait:
        raise RateLimited(f"at most {rt.settings.verify_per_minute} verifications a minute per client; "
                          f"retry in {retry_after(wait)} s", retry_after=retry_after(wait))
    with admission.expensive(rt.throttles, "verify", client) as meter:
        refuse_unknown_form_fields()
        blobs = read()
        if len(blobs) != 1:
            raise InvalidInput("send exactly one file in the multipart field 'media'")
        media_kind(blobs[0])
        return report_of(blobs[0], meter)


def report_of(data: bytes, meter: Meter) -> dict[str, Any]:
    """The verification report of an upload, against this service's keys and records (for ``/v1/verify`` and
    for a notice that uploads the video it is about)."""
    rt = runtime()
    anchors, marks = rt.keys.present()
    return verification_svc.verify_bytes(data, verification_svc.Records(db(), rt.indexes, rt.heads),
                                         trust_anchors=anchors, watermark_keys=marks, meter=meter)

"""HTTP API v1, verification: anyone uploads a video or image and gets its verification report (nothing uploaded is
kept). Rate-limited per client and admitted by the expensive-work slots (:mod:`governance.admission`)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from governance import admission
from governance.authz import Action
from governance.errors import InvalidInput, RateLimited
from governance.ratelimit import retry_after
from governance.uploads import media_kind
from governance.verification import services as verification_svc
from governance.web import db, guard, optional_caller, runtime, uploaded_blobs

bp = Blueprint("verification", __name__)  # nested in the v1 blueprint (governance.app): /v1/...


@bp.post("/verify")
@guard(Action.VERIFY)
def verify() -> Response:
    account = optional_caller()  # anyone may verify; a token, if sent, must be valid (guard checked it)
    client = f"account:{account.id}" if account else f"addr:{request.remote_addr}"
    wait = runtime().verify_limiter.acquire(client)
    if wait:
        raise RateLimited(f"at most {runtime().settings.verify_per_minute} verifications a minute per client; "
                          f"retry in {retry_after(wait)} s", retry_after=retry_after(wait))
    with admission.expensive(runtime(), "verify", client) as meter:
        blobs = uploaded_blobs()
        if len(blobs) != 1:
            raise InvalidInput("send exactly one file in the multipart field 'media'")
        media_kind(blobs[0])
        return jsonify(verification_svc.verify_bytes(blobs[0], runtime(), db(), meter=meter))

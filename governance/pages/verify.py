"""Verify (anyone, no account): upload a file, read its report as a person would. Nothing uploaded is stored:
the upload is read into memory and handed to the same verification the API runs
(:func:`governance.verification.views.verify_upload`)."""

from __future__ import annotations

from flask import render_template, request

from governance.pages import reading
from governance.pages.site import bp, page
from governance.verification.views import verify_upload
from governance.web import uploaded_blobs


@bp.get("/verify")
@page(None)
def verify_form() -> str:
    return render_template("verify.html", report=None)


@bp.post("/verify")
@page(None)
def verify_post() -> str:
    report = verify_upload(lambda: uploaded_blobs("media"))
    record = report.get("record") or {}
    entry = record.get("log_entry")
    name = request.files["media"].filename if "media" in request.files else None
    return render_template("verify.html", report=report, record=record, entry=entry, filename=name,
                           verdict=reading.verdict(report), proof_ok=reading.inclusion_checked(entry),
                           c2pa_finding=reading.c2pa_finding(report.get("c2pa")))

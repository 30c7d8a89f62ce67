"""No page may be framed by another site (clickjacking: the take-down, grant and revoke buttons of My face under
a transparent frame). Every page answer says so twice, for old and new browsers: ``X-Frame-Options: DENY``
(RFC 7034) and the CSP ``frame-ancestors 'none'`` (CSP Level 2), which supersedes it where both are understood."""

from __future__ import annotations

from flask import Response

from governance.pages.site import bp

#: The answer headers every page carries.
HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}


@bp.after_request
def no_framing(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response

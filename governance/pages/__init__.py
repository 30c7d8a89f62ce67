"""The pages: a second front door onto the same services as the API, server-rendered (Jinja) for people in a
browser. Each page module calls the domain services (or the small helpers the API views share), never the API.

    >>> from governance.app import create_app
    >>> import tempfile  # a fresh data dir: a kept one may hold another revision's schema
    >>> app = create_app({"data_dir": tempfile.mkdtemp(), "worker": "none"})
    >>> app.test_client().get("/").status_code
    200
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # not imported at run time: ``governance.models`` imports this package's tables, and a process
    # that only reads the database (``consentgate verify``) need not load Flask (~80 ms)
    from flask import Flask


def init_app(app: Flask) -> None:
    """Register the pages at ``/`` with their session cookie and CSRF protection. (Imported here, not at the top:
    ``governance.models`` imports this package's tables, and the pages import the whole service.)"""
    from governance.pages import (  # noqa: F401  (each module adds its pages, or its hooks, to site.bp)
        awaiting,
        characters,
        core,
        face,
        framing,
        generate,
        guardians,
        notices,
        site,
        verify,
    )

    site.init_app(app)

"""Functional tests drive the HTTP API end to end with real components: dlib faces, the procedural generator,
the watermark, c2pa-python signing. No mocks."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from governance.app import create_app
from governance.db import unit_of_work
from governance.services.accounts import create_account


class Api:
    """A thin HTTP client speaking the v1 contract, one token per call."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.rt = app.extensions["consentgate"]

    def account(self, name: str, role: str = "creator") -> str:
        with unit_of_work(self.rt.engine) as session:
            _, token = create_account(session, name, role)
        return token

    def call(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.open(path, method=method, headers=headers, **kw)

    def multipart(self, path: str, token: str | None, files: list[tuple[str, bytes]], **form: str) -> Any:
        """POST a multipart form built in memory (the test client would spool big bodies to unclosed files)."""
        from werkzeug.datastructures import FileStorage, MultiDict
        from werkzeug.test import encode_multipart

        fields: MultiDict[str, Any] = MultiDict(form)
        for name, data in files:
            fields.add("media", FileStorage(io.BytesIO(data), filename=name))
        boundary, body = encode_multipart(fields)
        return self.call("POST", path, token, data=body, content_type=f"multipart/form-data; boundary={boundary}")

    def enroll(self, token: str, *paths: Path, expect: int = 201, **form: str) -> Any:
        r = self.multipart("/v1/likenesses", token, [(p.name, p.read_bytes()) for p in paths], **form)
        assert r.status_code == expect, r.get_json()
        return r.get_json()

    def generate(self, token: str, prompt: str, likenesses: list[str] | None = None, seed: int = 7) -> Any:
        r = self.call("POST", "/v1/generations", token, json={"prompt": prompt, "likenesses": likenesses or [],
                                                             "seed": seed})
        assert r.status_code == 202, r.get_json()
        return r.get_json()

    def wait(self, token: str, gen_id: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = self.call("GET", f"/v1/generations/{gen_id}", token).get_json()
            if body["state"] in ("released", "blocked", "held") or time.monotonic() > deadline:
                return body
            time.sleep(0.1)

    def download(self, token: str, gen_id: str) -> bytes:
        r = self.call("GET", f"/v1/generations/{gen_id}/video", token)
        try:
            assert r.status_code == 200 and r.mimetype == "video/mp4", r.get_json()
            return bytes(r.data)
        finally:
            r.close()

    def verify(self, data: bytes, name: str = "clip.mp4") -> Any:
        return self.multipart("/v1/verify", None, [(name, data)])

    def notifications(self, token: str) -> list[dict[str, Any]]:
        return self.call("GET", "/v1/notifications", token).get_json()["notifications"]

    def leftovers(self) -> list[Path]:
        """Files in quarantine (must always be empty once jobs are done)."""
        return list(self.rt.settings.quarantine_dir.iterdir())


@pytest.fixture
def make_api(tmp_path: Path) -> Iterator[Any]:
    apps: list[Flask] = []

    def make(**config: Any) -> Api:
        settings = {"data_dir": tmp_path / f"var{len(apps)}", "worker": "thread",
                    "max_upload_bytes": 8 * 1024 * 1024, **config}
        apps.append(create_app(settings))
        return Api(apps[-1])

    yield make
    for app in apps:
        app.extensions["consentgate"].close()


@pytest.fixture
def api(make_api: Any) -> Api:
    api: Api = make_api()
    return api

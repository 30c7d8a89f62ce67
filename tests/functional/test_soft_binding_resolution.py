"""The C2PA Soft Binding Resolution API, the labels a release carries, and what verification says it knows.

The client below is written from the specification (C2PA 2.2, *Decoupled* section 1.3, OpenAPI 1.0.0): its
routes and parameters, and the response schemas ``c2pa.softBindingQueryResult`` and
``c2pa.softBindingAlgList`` transcribed as JSON Schema, checked with ``jsonschema``; manifests are read with
c2pa-python, never with our reader.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import c2pa
import jsonschema
import numpy as np
import pytest
from flask.testing import FlaskClient

from governance.app import create_app
from media.video import Clip, read_video, write_video
from tests.functional.conftest import Api
from tests.media_tools import remux

# --- the specification's response schemas (components.schemas), as JSON Schema ---------------------------
QUERY_RESULT = {  # c2pa.softBindingQueryResult
    "type": "object",
    "properties": {"matches": {"type": "array", "items": {
        "type": "object",
        "properties": {"manifestId": {"type": "string"}, "endpoint": {"type": "string"},
                       "similarityScore": {"type": "integer", "minimum": 0, "maximum": 100}},
        "required": ["manifestId"]}}},
}
ALG_LIST = {  # c2pa.softBindingAlgList
    "type": "object",
    "properties": {kind: {"type": "array", "items": {"type": "object", "properties": {"alg": {"type": "string"}},
                                                      "required": ["alg"]}}
                   for kind in ("watermarks", "fingerprints")},
}


class SbrClient:
    """A Soft Binding Resolution API client from the OpenAPI document: base URL, then the spec's paths."""

    def __init__(self, http: FlaskClient, base: str = "/sbr/v1") -> None:
        self.http, self.base = http, base

    def _matches(self, r: Any) -> list[dict[str, Any]]:
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        jsonschema.validate(body, QUERY_RESULT)
        return body["matches"]  # type: ignore[no-any-return]

    def query_by_binding(self, alg: str, value: str, max_results: int | None = None) -> list[dict[str, Any]]:
        q = {"alg": alg, "value": value} | ({"maxResults": max_results} if max_results else {})
        return self._matches(self.http.get(f"{self.base}/matches/byBinding", query_string=q))

    def query_by_large_binding(self, alg: str, value: str) -> list[dict[str, Any]]:
        return self._matches(self.http.post(f"{self.base}/matches/byBinding", json={"alg": alg, "value": value}))

    def upload_file(self, asset: bytes, mime: str = "video/mp4", **query: Any) -> list[dict[str, Any]]:
        return self._matches(self.http.post(f"{self.base}/matches/byContent", data=asset, content_type=mime,
                                            query_string=query))

    def get_manifest_by_id(self, manifest_id: str, **query: Any) -> bytes:
        r = self.http.get(f"{self.base}/manifests/{manifest_id}", query_string=query)
        assert r.status_code == 200 and r.mimetype == "application/c2pa", r.status_code
        return bytes(r.data)

    def get_supported_bindings(self) -> dict[str, Any]:
        r = self.http.get(f"{self.base}/services/supportedAlgorithms")
        assert r.status_code == 200
        jsonschema.validate(r.get_json(), ALG_LIST)
        return r.get_json()  # type: ignore[no-any-return]


class World:
    def __init__(self, api: Api, token: str, gen: dict[str, Any], video: bytes) -> None:
        self.api, self.token, self.gen, self.video = api, token, gen, video
        with c2pa.Reader("video/mp4", io.BytesIO(video)) as reader:
            self.store = json.loads(reader.json())
        self.manifest_id: str = self.store["active_manifest"]

    def binding(self, alg: str) -> str:
        manifest = self.store["manifests"][self.manifest_id]
        (data,) = [a["data"] for a in manifest["assertions"]
                   if a["label"].startswith("c2pa.soft-binding") and a["data"]["alg"] == alg]
        return data["blocks"][0]["value"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    app = create_app({"data_dir": tmp_path_factory.mktemp("sbr") / "var", "worker": "thread",
                      "max_upload_bytes": 8 * 1024 * 1024, "verify_per_minute": 10_000, "duration_s": 2.0})
    api = Api(app)
    try:
        ada = api.account("ada_lovelace")
        gen = api.generate(ada, "a lighthouse on a cliff at dawn", [])
        done = api.wait(ada, gen["id"])
        assert done["state"] == "released", done["reasons"]
        yield World(api, ada, done, api.download(ada, gen["id"]))
    finally:
        app.extensions["consentgate"].close()


@pytest.fixture(scope="module")
def sbr(world: World) -> SbrClient:
    return SbrClient(world.api.client)


@pytest.fixture(scope="module")
def reposted(world: World, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The release stripped of its manifest (remuxed) and re-encoded at crf 28: what a repost looks like."""
    folder = tmp_path_factory.mktemp("repost")
    (folder / "release.mp4").write_bytes(world.video)
    remux(folder / "release.mp4", folder / "stripped.mp4")
    write_video(folder / "reencoded.mp4", read_video(folder / "stripped.mp4"), crf=28, preset="ultrafast")
    return (folder / "reencoded.mp4").read_bytes()


@pytest.fixture(scope="module")
def stranger() -> bytes:
    """A video that is not ours: noise, never released here."""
    frames = np.random.default_rng(3).integers(0, 256, (48, 256, 256, 3), dtype=np.uint8)
    buf = io.BytesIO()
    path = Path("/tmp") / f"stranger-{id(buf)}.mp4"
    write_video(path, Clip(frames=frames, fps=24.0), preset="ultrafast")
    try:
        return path.read_bytes()
    finally:
        path.unlink()


# --- the manifest of a release (C2PA 2.2) -------------------------------------------------------------------


def test_the_release_declares_its_watermark_and_fingerprint_and_source_type(world: World) -> None:
    manifest = world.store["manifests"][world.manifest_id]
    actions = [a for x in manifest["assertions"] if x["label"].startswith("c2pa.actions") for a in x["data"]["actions"]]
    assert [a["action"] for a in actions] == ["c2pa.created", "c2pa.watermarked"]
    assert actions[0]["digitalSourceType"].endswith("/algorithmicMedia")  # the procedural renderer
    assert base64.b64decode(world.binding("dev.consentgate.watermark.1")).hex() == world.gen["content_id"]
    # the stored fingerprint: an 8-byte header and 16 x 264 int8
    assert len(base64.b64decode(world.binding("dev.consentgate.fingerprint.1"))) == 4232


# --- the resolution API ---------------------------------------------------------------------------------------


def test_supported_algorithms(sbr: SbrClient) -> None:
    assert sbr.get_supported_bindings() == {"watermarks": [{"alg": "dev.consentgate.watermark.1"}],
                                            "fingerprints": [{"alg": "dev.consentgate.fingerprint.1"}]}


def test_by_binding_resolves_the_watermark_and_the_fingerprint(world: World, sbr: SbrClient) -> None:
    by_mark = sbr.query_by_binding("dev.consentgate.watermark.1", world.binding("dev.consentgate.watermark.1"))
    by_print = sbr.query_by_large_binding("dev.consentgate.fingerprint.1",
                                          world.binding("dev.consentgate.fingerprint.1"))

    assert by_mark == [{"manifestId": world.manifest_id, "similarityScore": 100}]
    assert by_print[0]["manifestId"] == world.manifest_id and by_print[0]["similarityScore"] >= 90


def test_a_stripped_reencoded_copy_resolves_to_its_manifest(world: World, sbr: SbrClient, reposted: bytes) -> None:
    with pytest.raises(c2pa.C2paError):
        c2pa.Reader("video/mp4", io.BytesIO(reposted))  # nothing left to read in the copy itself

    matches = sbr.upload_file(reposted)
    assert matches[0] == {"manifestId": world.manifest_id, "similarityScore": 100}
    only_print = sbr.upload_file(reposted, alg="dev.consentgate.fingerprint.1")
    assert [m["manifestId"] for m in only_print] == [world.manifest_id]


def test_a_file_that_is_not_ours_matches_nothing(sbr: SbrClient, stranger: bytes) -> None:
    assert sbr.upload_file(stranger) == []
    assert sbr.query_by_binding("dev.consentgate.watermark.1", base64.b64encode(b"\x00" * 8).decode()) == []


def test_the_manifest_store_validates_with_c2pa_python(world: World, sbr: SbrClient) -> None:
    store = sbr.get_manifest_by_id(world.manifest_id)
    anchors = b"".join(world.api.rt.keys.trust_anchors).decode()
    settings = c2pa.Settings.from_dict({"trust": {"user_anchors": anchors}})
    with settings, c2pa.Context(settings=settings) as ctx, \
            c2pa.Reader("video/mp4", io.BytesIO(world.video), store, ctx) as reader:
        assert reader.get_validation_state() == "Trusted"
        assert json.loads(reader.json())["active_manifest"] == world.manifest_id
    with c2pa.Reader("application/c2pa", io.BytesIO(store)) as alone:  # the store on its own: signed claim intact
        results = alone.get_validation_results()["activeManifest"]
        assert "claimSignature.validated" in {s["code"] for s in results["success"]}
    assert sbr.get_manifest_by_id(world.manifest_id, returnActiveManifest="true") == store  # one manifest


@pytest.mark.parametrize("method,path,kw,status,detail", [
    ("GET", "/sbr/v1/matches/byBinding?alg=com.example.other.1&value=AAAAAAAAAAA=", {}, 400, "alg must be one of"),
    ("GET", "/sbr/v1/matches/byBinding?alg=dev.consentgate.watermark.1&value=%25%25", {}, 400, "base64"),
    ("GET", "/sbr/v1/matches/byBinding?alg=dev.consentgate.watermark.1&value=AAAA", {}, 400, "is 8 bytes"),
    ("GET", "/sbr/v1/matches/byBinding?value=AAAAAAAAAAA=", {}, 400, "alg is required"),
    ("GET", "/sbr/v1/matches/byBinding?alg=dev.consentgate.watermark.1&value=AAAAAAAAAAA=&maxResults=0", {}, 400,
     "maxResults"),
    ("GET", "/sbr/v1/matches/byBinding?alg=dev.consentgate.watermark.1&value=AAAAAAAAAAA=&maxResults=ten", {}, 400,
     "maxResults"),
    ("POST", "/sbr/v1/matches/byBinding", {"json": {"alg": "dev.consentgate.watermark.1"}}, 400, "value is required"),
    ("POST", "/sbr/v1/matches/byBinding", {"json": {"alg": "x", "value": "AA==", "extra": 1}}, 422, "unknown fields"),
    ("POST", "/sbr/v1/matches/byContent", {"data": b"plain text, not media", "content_type": "text/plain"}, 415,
     "expected a video or an image"),
    ("POST", "/sbr/v1/matches/byContent", {"data": b"", "content_type": "video/mp4"}, 400, "request body"),
    ("GET", "/sbr/v1/manifests/urn:c2pa:00000000-0000-0000-0000-000000000000", {}, 404, "no C2PA manifest"),
])
def test_bad_queries_are_refused_as_problems(world: World, method: str, path: str, kw: dict[str, Any], status: int,
                                             detail: str) -> None:
    r = world.api.client.open(path, method=method, **kw)
    assert r.status_code == status and r.mimetype == "application/problem+json", r.get_json()
    assert detail in r.get_json()["detail"]


def test_return_active_manifest_must_be_a_boolean(world: World) -> None:
    r = world.api.client.get(f"/sbr/v1/manifests/{world.manifest_id}?returnActiveManifest=maybe")
    assert r.status_code == 400 and "true or false" in r.get_json()["detail"]


def test_lookups_are_rate_limited_like_verification(tmp_path: Path) -> None:
    app = create_app({"data_dir": tmp_path / "var", "worker": "none", "verify_per_minute": 2})
    try:
        client = app.test_client()
        statuses = [client.get("/sbr/v1/matches/byBinding?alg=dev.consentgate.watermark.1&value=AAAAAAAAAAA=")
                    .status_code for _ in range(4)]
        assert statuses[:2] == [200, 200] and statuses[-1] == 429
    finally:
        app.extensions["consentgate"].close()


# --- verification says what it knows --------------------------------------------------------------------------


def test_the_release_reports_every_label_of_the_three_laws(world: World) -> None:
    report = world.api.verify(world.video).get_json()

    assert report["origin"] == "consentgate" and report["ai_generated"] is True
    assert {law: v["met"] for law, v in report["labels"].items()} == {
        "eu_ai_act_art50": True, "ca_sb942": True, "gb_45438_2025": True}
    assert report["record"]["manifest_id"] == world.manifest_id


def test_a_stripped_copy_still_names_the_sb942_fields_through_the_watermark(world: World, reposted: bytes) -> None:
    report = world.api.verify(reposted).get_json()

    sb942 = report["labels"]["ca_sb942"]
    assert sb942["met"] and {e["where"] for e in sb942["elements"]} == {
        "release record found through the watermark or fingerprint"}
    assert report["labels"]["gb_45438_2025"]["missing"] == ["explicit_label", "implicit_metadata", "implicit_xmp"]
    assert report["record"]["latent_disclosure"]["content_id"] == world.gen["content_id"]


def test_a_file_with_no_evidence_is_of_unknown_origin(world: World, stranger: bytes) -> None:
    report = world.api.verify(stranger).get_json()

    assert report["origin"] == "unknown" and report["ai_generated"] is None
    assert "UNKNOWN ORIGIN" in report["summary"]
    assert not any(law["met"] for law in report["labels"].values())


def test_a_taken_down_video_says_so_plainly_with_when(tmp_path: Path) -> None:
    app = create_app({"data_dir": tmp_path / "var", "worker": "thread", "max_upload_bytes": 8 * 1024 * 1024,
                      "duration_s": 1.0, "frame_size": 128})
    try:
        api = Api(app)
        grace = api.account("grace")
        gen = api.generate(grace, "a quiet harbour", [])
        assert api.wait(grace, gen["id"])["state"] == "released"
        video = api.download(grace, gen["id"])
        assert api.call("DELETE", f"/v1/generations/{gen['id']}", grace).status_code == 204

        report = api.verify(video).get_json()
        assert report["record"]["taken_down"] is True and report["record"]["taken_down_at"]
        assert f"TAKEN DOWN on {report['record']['taken_down_at'][:10]}" in report["summary"]
        assert "(released)" not in report["summary"]
    finally:
        app.extensions["consentgate"].close()


def test_consentgate_verify_reports_the_labels(world: World, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from governance.cli import main

    clip = tmp_path / "release.mp4"
    clip.write_bytes(world.video)
    assert main(["--data-dir", str(world.api.rt.settings.data_dir), "verify", str(clip)]) == 0
    out = capsys.readouterr().out
    assert "origin:      consentgate" in out
    assert "labels:      EU AI Act Article 50: all required elements found" in out
    assert "labels:      GB 45438-2025: all required elements found" in out
    assert main(["--data-dir", str(world.api.rt.settings.data_dir), "verify", str(clip), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"]["ca_sb942"]["met"] is True


def test_a_deployment_labelling_in_chinese_declares_and_draws_it(tmp_path: Path) -> None:
    """GB 45438-2025's Chinese wording (``GOVERNANCE_LABEL_LANGUAGE=zh``): the release's label reads "人工智能生成"
    (the manifest declares it, read back with c2pa-python), and the three laws are still met; an unknown
    language or an unreadable font stops the service at start, naming the setting."""
    from governance.errors import ConfigError

    app = create_app({"data_dir": tmp_path / "var", "worker": "thread", "duration_s": 1.0, "frame_size": 256,
                      "label_language": "zh"})
    api = Api(app)
    try:
        ada = api.account("ada_lovelace")
        done = api.wait(ada, api.generate(ada, "a lighthouse on a cliff at dawn", [])["id"])
        assert done["state"] == "released", done["reasons"]
        video = api.download(ada, done["id"])
        with c2pa.Reader("video/mp4", io.BytesIO(video)) as reader:
            store = json.loads(reader.json())
        manifest = store["manifests"][store["active_manifest"]]
        (disclosure,) = [a["data"] for a in manifest["assertions"] if a["label"] == "org.consentgate.disclosure"]
        label = disclosure["visible_label"]
        assert (label["text"], label["language"], label["ai_mark"]) == ("人工智能生成", "zh", True)
        report = api.verify(video).get_json()
        assert report["labels"]["gb_45438_2025"]["met"] is True
    finally:
        app.extensions["consentgate"].close()
    for bad, error in (({"label_language": "fr"}, "label_language must be 'en' or 'zh'"),
                       ({"label_language": "zh", "label_font": str(tmp_path / "none.ttf")}, "cannot be read")):
        with pytest.raises(ConfigError, match=error):
            create_app({"data_dir": tmp_path / "var2", **bad})

"""Remixes: lineage in the manifest (C2PA ingredients), consent over the whole ancestry, withdrawal down the graph.

Jobs run one at a time in the test's thread (``worker="none"`` and ``pipeline.process``), so a generation
requested and not yet processed is exactly an in-flight one.
"""

from __future__ import annotations

import io
import json
from typing import Any

import c2pa
import pytest
from sqlmodel import select

from governance.models import AuditEvent
from tests.functional.conftest import Api

FAST = {"worker": "none", "duration_s": 1.0, "frame_size": 256, "daily_quota": 100}


def make(api: Api, token: str, prompt: str, likenesses: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    r = api.call("POST", "/v1/generations", token, json={"prompt": prompt, "likenesses": likenesses or [], "seed": 3,
                                                         **extra})
    assert r.status_code == 202, r.get_json()
    return r.get_json()  # type: ignore[no-any-return]


def run(api: Api, token: str, gen: dict[str, Any]) -> dict[str, Any]:
    api.rt.pipeline.process(gen["id"])
    return api.call("GET", f"/v1/generations/{gen['id']}", token).get_json()  # type: ignore[no-any-return]


def store_of(video: bytes) -> dict[str, Any]:
    with c2pa.Reader("video/mp4", io.BytesIO(video)) as reader:
        return json.loads(reader.json())  # type: ignore[no-any-return]


@pytest.fixture
def family(make_api: Any, faces_dir: Any) -> dict[str, Any]:
    """alice's live likeness, granted to bob; bob's release showing it (the grandparent), his remix of it (the
    parent) and his remix of that (the child). A remix is of a generation its requester may see."""
    api = make_api(**FAST)
    people = {name: api.account(name) for name in ("alice", "bob", "frank")}
    lk = api.enroll_live(people["alice"], faces_dir / "obama.jpg")
    assert api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", people["alice"]).status_code == 201
    bob = people["bob"]
    grand = run(api, bob, make(api, bob, "a portrait in a garden", [lk["id"]]))
    assert grand["state"] == "released", grand["reasons"]
    parent = run(api, bob, make(api, bob, "the same, at night", remix_of=grand["id"]))
    assert parent["state"] == "released", parent["reasons"]
    child = run(api, bob, make(api, bob, "the same, in the rain", remix_of=parent["id"]))
    assert child["state"] == "released", child["reasons"]
    return {"api": api, "people": people, "likeness": lk["id"], "grand": grand, "parent": parent, "child": child}


def test_a_remix_of_a_remix_shows_the_full_chain_in_the_reader(family: dict[str, Any]) -> None:
    api, bob = family["api"], family["people"]["bob"]
    store = store_of(api.download(bob, family["child"]["id"]))

    assert len(store["manifests"]) == 3
    titles = {m["title"] for m in store["manifests"].values()}
    assert titles == {f"ConsentGate generation {family[k]['id']}" for k in ("grand", "parent", "child")}
    active = store["manifests"][store["active_manifest"]]
    (ingredient,) = active["ingredients"]
    assert ingredient["relationship"] == "inputTo"
    assert ingredient["title"] == f"ConsentGate generation {family['parent']['id']}"
    assert store["validation_state"] in ("Valid", "Trusted")
    # the lineage's likeness was part of the remix's request: consent was asked for it
    assert family["child"]["likenesses"] == [family["likeness"]]


def test_a_remix_needs_consent_for_every_likeness_of_its_ancestry(family: dict[str, Any]) -> None:
    api, p = family["api"], family["people"]
    r = api.call("POST", "/v1/generations", p["frank"], json={"prompt": "x", "remix_of": family["child"]["id"]})
    assert r.status_code == 404  # frank may not even see bob's generation

    assert api.call("DELETE", f"/v1/likenesses/{family['likeness']}/grants/bob", p["alice"]).status_code == 204
    again = make(api, p["bob"], "again", remix_of=family["grand"]["id"])  # names no likeness itself
    assert again["state"] == "blocked"
    assert any("no consent is on record" in r for r in again["reasons"]), again["reasons"]


def test_revoking_the_grandparents_likeness_follows_the_graph(family: dict[str, Any]) -> None:
    api, p = family["api"], family["people"]
    great = make(api, p["bob"], "the same, in the snow", remix_of=family["child"]["id"])
    assert great["state"] == "prechecked"  # in flight: requested, not yet processed

    r = api.call("PATCH", f"/v1/likenesses/{family['likeness']}", p["alice"], json={"mode": "only_me"})
    assert r.status_code == 200

    grand = api.call("GET", f"/v1/generations/{family['grand']['id']}", p["bob"]).get_json()
    assert grand["state"] == "released" and not grand.get("taken_down")  # made under a grant valid then
    for k in ("parent", "child"):
        assert api.call("GET", f"/v1/generations/{family[k]['id']}/video", p["bob"]).status_code == 410
        assert not (api.rt.settings.videos_dir / f"{family[k]['id']}.mp4").exists()
    after = run(api, p["bob"], great)
    assert after["state"] == "blocked" and after["reasons"], after
    notes = " ".join(n["message"] for n in api.notifications(p["bob"]))
    assert family["child"]["id"] in notes and "taken down" in notes


def test_deleting_the_likeness_takes_the_remixes_showing_it_down(family: dict[str, Any]) -> None:
    api, p = family["api"], family["people"]
    assert api.call("DELETE", f"/v1/likenesses/{family['likeness']}", p["alice"]).status_code == 204

    grand = api.call("GET", f"/v1/generations/{family['grand']['id']}", p["bob"]).get_json()
    assert grand["state"] == "released" and not grand.get("taken_down")  # made under a grant valid then
    for k in ("parent", "child"):
        assert api.call("GET", f"/v1/generations/{family[k]['id']}/video", p["bob"]).status_code == 410
        assert not (api.rt.settings.videos_dir / f"{family[k]['id']}.mp4").exists()
    notes = " ".join(n["message"] for n in api.notifications(p["bob"]))
    assert family["parent"]["id"] in notes and "likeness deleted" in notes


def test_marking_the_owner_a_minor_suspends_the_grant_and_takes_its_remixes_down(family: dict[str, Any]) -> None:
    """A grant suspended because its owner is a minor's (issue 16) is withdrawn as a revocation is: the remixes its
    grantee made under it come down (files removed), the original release stays; the guardian's approval later
    makes the grant again, not the videos."""
    api, p = family["api"], family["people"]
    admin, gina = api.account("root", "admin"), api.account("gina")
    r = api.call("PUT", "/v1/accounts/alice/guardian", admin, json={"guardian": "gina"})
    assert r.status_code == 200, r.get_json()
    grand = api.call("GET", f"/v1/generations/{family['grand']['id']}", p["bob"]).get_json()
    assert grand["state"] == "released" and not grand.get("taken_down")  # made under a grant valid then
    for k in ("parent", "child"):
        assert api.call("GET", f"/v1/generations/{family[k]['id']}/video", p["bob"]).status_code == 410
        assert not (api.rt.settings.videos_dir / f"{family[k]['id']}.mp4").exists()
    notes = " ".join(n["message"] for n in api.notifications(p["bob"]))
    assert family["parent"]["id"] in notes and "suspended" in notes
    [approval] = api.call("GET", "/v1/guardian/approvals", gina).get_json()["approvals"]
    r = api.call("POST", f"/v1/guardian/approvals/{approval['id']}", gina, json={"decision": "approve"})
    assert r.status_code == 200
    assert api.call("GET", f"/v1/generations/{family['child']['id']}/video", p["bob"]).status_code == 410


def test_a_dispute_resolved_against_the_likeness_takes_the_remixes_showing_it_down(
        family: dict[str, Any], faces_dir: Any) -> None:
    api, p = family["api"], family["people"]
    frank = api.enroll_live(p["frank"], faces_dir / "obama.jpg")  # the same face, claimed again, live
    [dispute] = frank["disputes"]
    admin = api.account("root", "admin")
    r = api.call("POST", f"/v1/disputes/{dispute['id']}/resolve", admin,
                 json={"outcome": "claimant", "reason": "frank proved the face is his"})
    assert r.status_code == 200, r.get_json()
    assert api.call("GET", f"/v1/likenesses/{family['likeness']}", p["alice"]).status_code == 404

    for k in ("parent", "child"):
        gen = api.call("GET", f"/v1/generations/{family[k]['id']}", p["bob"]).get_json()
        assert gen["taken_down"], gen
    with api.rt.session() as s:
        takedowns = s.exec(select(AuditEvent).where(AuditEvent.tag == "generation:takedown",
                                                    AuditEvent.subject == family["parent"]["id"])).all()
    assert [e.data["reason"] for e in takedowns] == [f"likeness {family['likeness']}: likeness deleted"]


def test_a_takedown_marks_released_descendants_and_blocks_the_unreleased(family: dict[str, Any]) -> None:
    api, p = family["api"], family["people"]
    child_video = api.download(p["bob"], family["child"]["id"])
    queued = make(api, p["bob"], "the same, at dawn", remix_of=family["child"]["id"])

    r = api.call("DELETE", f"/v1/generations/{family['grand']['id']}", p["alice"], json={"reason": "not me"})
    assert r.status_code == 204  # alice's face: her takedown withdraws it from the remixes too

    for k in ("parent", "child"):
        assert api.call("GET", f"/v1/generations/{family[k]['id']}/video", p["bob"]).status_code == 410
    assert api.call("GET", f"/v1/generations/{queued['id']}", p["bob"]).get_json()["state"] == "blocked"
    report = api.verify(child_video).get_json()
    assert report["record"]["taken_down"] is True and "TAKEN DOWN" in report["summary"]


def test_a_takedown_without_a_face_marks_the_descendants(family: dict[str, Any]) -> None:
    api, p = family["api"], family["people"]
    child_video = api.download(p["bob"], family["child"]["id"])

    assert api.call("DELETE", f"/v1/generations/{family['grand']['id']}", p["bob"]).status_code == 204  # requester

    report = api.verify(child_video).get_json()
    assert report["record"]["taken_down"] is False
    assert report["record"]["ancestor_withdrawn"]["reason"].startswith(f"an ancestor ({family['grand']['id']})")
    assert "an ancestor was withdrawn" in report["summary"]
    notes = " ".join(n["message"] for n in api.notifications(p["alice"]))
    assert "an ancestor" in notes  # the owner of the face in it is told
    r = api.call("POST", "/v1/generations", p["bob"], json={"prompt": "x", "remix_of": family["grand"]["id"]})
    assert r.status_code == 409 and "taken down" in r.get_json()["detail"]
    r = api.call("POST", "/v1/generations", p["bob"], json={"prompt": "x", "remix_of": family["child"]["id"]})
    assert r.status_code == 409 and "an ancestor" in r.get_json()["detail"]


def test_a_takedown_decided_on_a_notice_follows_the_lineage(family: dict[str, Any]) -> None:
    api, p = family["api"], family["people"]
    child_video = api.download(p["bob"], family["child"]["id"])
    queued = make(api, p["bob"], "the same, at dusk", remix_of=family["child"]["id"])
    r = api.call("POST", "/v1/notices", json={"contact": "someone@example.org", "on_behalf_of": "minor_in_care",
                                             "good_faith": True, "statement": "This shows my child.",
                                             "generation_id": family["grand"]["id"]})
    assert r.status_code == 201, r.get_json()
    admin = api.account("root", "admin")
    r = api.call("POST", f"/v1/notices/{r.get_json()['id']}/decision", admin,
                 json={"outcome": "take_down", "reason": "a credible notice"})
    assert r.status_code == 200, r.get_json()

    assert api.call("GET", f"/v1/generations/{queued['id']}", p["bob"]).get_json()["state"] == "blocked"
    report = api.verify(child_video).get_json()
    assert report["record"]["taken_down"] is False
    assert "takedown notice" in report["record"]["ancestor_withdrawn"]["reason"]
    assert "an ancestor was withdrawn" in report["summary"]


@pytest.mark.parametrize("remix_of,status,detail", [
    (12, 422, "remix_of must be a generation id"),
    ("gen_0123456789abcdef", 404, "no generation"),
])
def test_bad_remix_requests_are_refused(make_api: Any, remix_of: Any, status: int, detail: str) -> None:
    api = make_api(**FAST)
    bob = api.account("bob")
    r = api.call("POST", "/v1/generations", bob, json={"prompt": "x", "remix_of": remix_of})
    assert r.status_code == status and detail in r.get_json()["detail"]
    assert api.call("GET", "/v1/generations", bob).get_json()["generations"] == []  # nothing half-made


def test_an_unreleased_generation_cannot_be_remixed(make_api: Any) -> None:
    api = make_api(**FAST)
    bob = api.account("bob")
    queued = make(api, bob, "a lake")
    r = api.call("POST", "/v1/generations", bob, json={"prompt": "x", "remix_of": queued["id"]})
    assert r.status_code == 409 and "only a released generation can be remixed" in r.get_json()["detail"]


def test_lineage_withdrawals_are_in_the_transparency_log(family: dict[str, Any]) -> None:
    """Issue 14: each step of a withdrawal down the lineage is a log entry (version 3) naming the remix's release
    entry and the withdrawn ancestor's, with an inclusion proof in the report of the remix's file; a revoked
    likeness takes its remixes down with an entry each, and the audit finds everything in order."""
    from provenance import merkle

    api, p = family["api"], family["people"]
    child_video = api.download(p["bob"], family["child"]["id"])
    index = {k: api.verify(api.download(p["bob"], family[k]["id"])).get_json()["record"]["log_entry"]["index"]
             for k in ("grand", "parent")}
    assert api.call("DELETE", f"/v1/generations/{family['grand']['id']}", p["bob"]).status_code == 204

    report = api.verify(child_video).get_json()
    (event,) = report["record"]["log_events"]
    release = report["record"]["log_entry"]
    assert (event["kind"], event["cause"], event["release_index"], event["origin_index"]) == (
        "ancestor_withdrawn", "lineage", release["index"], index["grand"])
    head = release["signed_tree_head"]
    assert event["tree_size"] == head["tree_size"] and event["root_hash"] == head["root_hash"]
    assert merkle.verify_inclusion(bytes.fromhex(event["leaf_hash"]), event["index"], head["tree_size"],
                                   [bytes.fromhex(h) for h in event["inclusion_proof"]],
                                   bytes.fromhex(head["root_hash"]))
    # taking the grandparent down again, or down another route, logs nothing more for the marked remixes
    assert api.call("DELETE", f"/v1/generations/{family['grand']['id']}", p["bob"]).status_code == 204
    assert len(api.verify(child_video).get_json()["record"]["log_events"]) == 1

    # alice closes her likeness: bob's remixes showing it come down, each with its entry
    assert api.call("PATCH", f"/v1/likenesses/{family['likeness']}", p["alice"],
                    json={"mode": "only_me"}).status_code == 200
    logged = api.verify(child_video).get_json()["record"]["log_events"]
    kinds = [(e["kind"], e["cause"], e["origin_index"]) for e in logged]
    # the child comes down once: as a remix showing the face, or through its parent, whichever is met first
    assert kinds[0] == ("ancestor_withdrawn", "lineage", index["grand"]) and len(kinds) == 2, kinds
    assert kinds[1] in (("takedown", "likeness_withdrawn", None), ("takedown", "lineage", index["parent"]))
    from governance.log.services import translog

    with api.rt.session() as s:
        audited = translog.audit(s, [api.rt.keys.trust_anchor_pem])
        entries = translog.all_entries(s)
        events = [(e.kind, e.cause, e.generation_id) for e in entries if e.kind != "release"]
    assert audited.problems == [], audited.problems
    assert ("takedown", "owner", family["grand"]["id"]) in events
    assert {g for k, _, g in events if k == "takedown"} >= {family["parent"]["id"], family["child"]["id"]}


def test_a_remixs_active_manifest_alone_is_served(family: dict[str, Any]) -> None:
    """C2PA Soft Binding Resolution API, ``GET /manifests/{id}?returnActiveManifest=true``: "only the active
    manifest", as an ``application/c2pa`` store of one manifest; the default is the whole store, ancestors
    included. c2pa-python reads both; without its ingredients' manifests the remix's ingredient claim is the one
    thing that fails (``ingredient.manifest.missing``, C2PA 2.2 section 15.11.3.3.2)."""
    api, bob = family["api"], family["people"]["bob"]
    video = api.download(bob, family["child"]["id"])
    manifest_id = store_of(video)["active_manifest"]
    whole = api.client.get(f"/sbr/v1/manifests/{manifest_id}")
    alone = api.client.get(f"/sbr/v1/manifests/{manifest_id}?returnActiveManifest=true")
    assert whole.status_code == alone.status_code == 200 and alone.mimetype == "application/c2pa"
    anchors = b"".join(api.rt.keys.trust_anchors).decode()
    seen = {}
    for name, r in (("whole", whole), ("alone", alone)):
        settings = c2pa.Settings.from_dict({"trust": {"user_anchors": anchors}})
        with settings, c2pa.Context(settings=settings) as ctx, \
                c2pa.Reader("video/mp4", io.BytesIO(video), bytes(r.data), ctx) as reader:
            store = json.loads(reader.json())
            failures = [f["code"] for f in reader.get_validation_results()["activeManifest"]["failure"]]
            seen[name] = (len(store["manifests"]), store["active_manifest"], failures)
    assert seen["whole"] == (3, manifest_id, [])
    assert seen["alone"] == (1, manifest_id, ["ingredient.manifest.missing"])

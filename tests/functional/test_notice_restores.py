"""What a takedown notice's restore may undo, and what it may not (session-21 review): a notice's takedown is
provisional (a counter-notice may restore it: the file is kept), every other takedown is final (an owner's, a
guardian's, an admin's, a consent withdrawn down the remix lineage: the file is removed, and the notice's restore
leaves the video down). A restore lifts the "ancestor withdrawn" marks its takedown left on the remixes, with a
``restore`` log entry each; ``consentgate log audit`` finds nothing wrong after any of these flows.

Jobs run one at a time in the test's thread (``worker="none"`` and ``pipeline.process``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from governance.cli import main
from tests.functional.test_remix import FAST, make, run


@pytest.fixture
def family(make_api: Any, faces_dir: Any) -> dict[str, Any]:
    """alice's live likeness granted to bob; bob's release showing her (``grand``), his remix of it (``parent``)
    and his remix of that (``child``); an admin."""
    api = make_api(**FAST)
    people = {name: api.account(name) for name in ("alice", "bob")}
    people["admin"] = api.account("root", "admin")
    lk = api.enroll_live(people["alice"], faces_dir / "obama.jpg")
    assert api.call("PUT", f"/v1/likenesses/{lk['id']}/grants/bob", people["alice"]).status_code == 201
    bob = people["bob"]
    grand = run(api, bob, make(api, bob, "a portrait in a garden", [lk["id"]]))
    parent = run(api, bob, make(api, bob, "the same, at night", remix_of=grand["id"]))
    child = run(api, bob, make(api, bob, "the same, in the rain", remix_of=parent["id"]))
    assert [g["state"] for g in (grand, parent, child)] == ["released"] * 3
    return {"api": api, "people": people, "likeness": lk["id"], "grand": grand["id"], "parent": parent["id"],
            "child": child["id"]}


def audit(api: Any, capsys: Any) -> list[str]:
    code = main(["--data-dir", str(api.rt.settings.data_dir), "log", "audit", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert (code == 0) == (report["problems"] == []), (code, report["problems"])
    return report["problems"]  # type: ignore[no-any-return]


def notice_down(api: Any, admin: str, gen_id: str) -> str:
    r = api.call("POST", "/v1/notices", json={"contact": "x@example.org", "on_behalf_of": "unable_to_file",
                                             "good_faith": True, "statement": "never agreed to this",
                                             "generation_id": gen_id})
    assert r.status_code == 201, r.get_json()
    notice_id = r.get_json()["id"]
    r = api.call("POST", f"/v1/notices/{notice_id}/decision", admin, json={"outcome": "take_down",
                                                                          "reason": "a credible notice"})
    assert r.status_code == 200, r.get_json()
    return notice_id  # type: ignore[no-any-return]


def counter(api: Any, bob: str, notice_id: str) -> None:
    r = api.call("POST", f"/v1/notices/{notice_id}/counter", bob, json={"statement": "she agreed to it",
                                                                       "good_faith": True})
    assert r.status_code == 200, r.get_json()


def restore(api: Any, admin: str, notice_id: str, expect: int = 200) -> Any:
    r = api.call("POST", f"/v1/notices/{notice_id}/decision", admin, json={"outcome": "restore",
                                                                          "reason": "consent on file"})
    assert r.status_code == expect, r.get_json()
    return r.get_json()


def status_of_video(api: Any, token: str, gen_id: str) -> int:
    r = api.call("GET", f"/v1/generations/{gen_id}/video", token)
    r.close()
    return int(r.status_code)


def stored(api: Any, gen_id: str) -> bool:
    return bool((api.rt.settings.videos_dir / f"{gen_id}.mp4").is_file())


def test_an_owners_takedown_over_a_notices_stands_and_the_restore_says_so(family: dict[str, Any], capsys) -> None:
    api, p = family["api"], family["people"]
    gen_id = family["grand"]
    video = api.download(p["bob"], gen_id)
    notice_id = notice_down(api, p["admin"], gen_id)
    assert stored(api, gen_id)  # a notice's takedown keeps the file for a restore
    assert api.call("DELETE", f"/v1/generations/{gen_id}", p["alice"]).status_code == 204
    assert not stored(api, gen_id)  # hers is final
    assert audit(api, capsys) == []
    counter(api, p["bob"], notice_id)
    view = restore(api, p["admin"], notice_id)
    assert view["state"] == "restored" and "stays down" in view["events"][-1]["text"], view["events"][-1]
    gen = api.call("GET", f"/v1/generations/{gen_id}", p["bob"]).get_json()
    assert gen["taken_down"] is True and status_of_video(api, p["bob"], gen_id) == 410
    assert audit(api, capsys) == []
    # the log says both takedowns, and no restore of this video
    record = api.verify(video).get_json()["record"]
    assert record["taken_down"] is True
    assert [(e["kind"], e["cause"]) for e in record["log_events"]] == [("takedown", "notice"),
                                                                       ("takedown", "owner")], record["log_events"]


def test_an_admins_takedown_over_a_notices_stands_too(family: dict[str, Any], capsys) -> None:
    api, p = family["api"], family["people"]
    video = api.download(p["bob"], family["child"])
    notice_id = notice_down(api, p["admin"], family["child"])
    r = api.call("DELETE", f"/v1/generations/{family['child']}", p["admin"], json={"reason": "court order"})
    assert r.status_code == 204
    counter(api, p["bob"], notice_id)
    restore(api, p["admin"], notice_id)
    record = api.verify(video).get_json()["record"]
    assert record["taken_down"] is True
    assert [e["kind"] for e in record["log_events"]] == ["takedown", "takedown"], record["log_events"]
    assert not stored(api, family["child"]) and audit(api, capsys) == []


def test_a_restore_lifts_the_marks_its_takedown_left_on_the_remixes(family: dict[str, Any], capsys) -> None:
    api, p = family["api"], family["people"]
    child_video = api.download(p["bob"], family["child"])
    notice_id = notice_down(api, p["admin"], family["grand"])
    assert api.verify(child_video).get_json()["record"]["ancestor_withdrawn"]
    r = api.call("POST", "/v1/generations", p["bob"], json={"prompt": "once more", "likenesses": [],
                                                            "remix_of": family["child"], "seed": 4})
    assert r.status_code == 409, r.get_json()  # a marked remix cannot be remixed
    counter(api, p["bob"], notice_id)
    restore(api, p["admin"], notice_id)
    record = api.verify(child_video).get_json()["record"]
    assert record.get("ancestor_withdrawn") is None and record["taken_down"] is False
    events = [(e["kind"], e.get("cause")) for e in record["log_events"]]
    assert events == [("ancestor_withdrawn", "lineage"), ("restore", "lineage")], record["log_events"]
    assert "an ancestor was withdrawn" not in api.verify(child_video).get_json()["summary"]
    assert any("was restored" in n["message"] for n in api.notifications(p["bob"]))
    assert audit(api, capsys) == []
    r = api.call("POST", "/v1/generations", p["bob"], json={"prompt": "once more", "likenesses": [],
                                                            "remix_of": family["child"], "seed": 4})
    assert r.status_code == 202, r.get_json()  # and it may be remixed again


def test_a_mark_stays_while_another_ancestor_is_still_down(family: dict[str, Any], capsys) -> None:
    api, p = family["api"], family["people"]
    child_video = api.download(p["bob"], family["child"])
    on_grand = notice_down(api, p["admin"], family["grand"])
    # the parent is marked, not down: it can still be taken down on a notice of its own
    on_parent = notice_down(api, p["admin"], family["parent"])
    counter(api, p["bob"], on_grand)
    restore(api, p["admin"], on_grand)
    record = api.verify(child_video).get_json()["record"]
    assert record["ancestor_withdrawn"], record  # the parent is still down
    assert [e["kind"] for e in record["log_events"]][-1] == "ancestor_withdrawn"
    counter(api, p["bob"], on_parent)
    restore(api, p["admin"], on_parent)
    record = api.verify(child_video).get_json()["record"]
    assert record.get("ancestor_withdrawn") is None and record["log_events"][-1]["kind"] == "restore"
    assert audit(api, capsys) == []


def test_a_remix_down_on_a_notice_keeps_its_file_until_a_consent_withdrawal_makes_it_final(
        family: dict[str, Any], capsys) -> None:
    api, p = family["api"], family["people"]
    child = family["child"]
    notice_id = notice_down(api, p["admin"], child)
    lake = run(api, p["bob"], make(api, p["bob"], "a quiet lake at dawn"))
    assert api.call("DELETE", f"/v1/generations/{lake['id']}", p["bob"]).status_code == 204  # sweeps
    assert stored(api, child)
    counter(api, p["bob"], notice_id)
    # alice revokes bob's grant: his remixes showing her are taken down for good, the countered notice closes
    assert api.call("DELETE", f"/v1/likenesses/{family['likeness']}/grants/bob", p["alice"]).status_code == 204
    assert not stored(api, child)
    view = api.call("GET", f"/v1/notices/{notice_id}", p["admin"]).get_json()
    assert view["state"] == "taken_down", view
    r = api.call("POST", f"/v1/notices/{notice_id}/decision", p["admin"], json={"outcome": "restore",
                                                                               "reason": "consent on file"})
    assert r.status_code == 409, r.get_json()
    gen = api.call("GET", f"/v1/generations/{child}", p["bob"]).get_json()
    assert gen["taken_down"] is True
    assert audit(api, capsys) == []


def test_a_notice_restore_after_the_remix_was_restored_keeps_the_file(family: dict[str, Any], capsys) -> None:
    api, p = family["api"], family["people"]
    child = family["child"]
    notice_id = notice_down(api, p["admin"], child)
    lake = run(api, p["bob"], make(api, p["bob"], "a quiet lake at dawn"))
    assert api.call("DELETE", f"/v1/generations/{lake['id']}", p["bob"]).status_code == 204
    counter(api, p["bob"], notice_id)
    restore(api, p["admin"], notice_id)
    assert status_of_video(api, p["bob"], child) == 200
    assert audit(api, capsys) == []

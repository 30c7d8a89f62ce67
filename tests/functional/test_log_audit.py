"""The transparency log cannot be cut short or edited unseen (issue #9, item 8): every head the service
signs is kept, and ``consentgate log audit`` holds the entries, every stored Merkle node, every kept head
and every release against each other; ``/v1/verify`` says when a release is missing from the log."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlmodel import select

from governance.cli import main
from governance.log.models import LogHead
from provenance.treehead import SignedTreeHead

FAST = {"duration_s": 1.0, "frame_size": 128}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, monkeypatch) -> Iterator[dict[str, str]]:
    """The SQLite file in the data dir, or a fresh PostgreSQL database (``pg_url``; the command line finds it
    too)."""
    if request.param == "sqlite":
        yield {}
        return
    url = request.getfixturevalue("pg_url")
    monkeypatch.setenv("GOVERNANCE_DATABASE_URL", url)
    yield {"database_url": url}


def _released(api, n: int) -> list[dict]:
    bob = api.account("bob")
    out = []
    for prompt in ("snow in the forest", "rain over the city", "a desert at noon")[:n]:
        done = api.wait(bob, api.generate(bob, prompt)["id"])
        assert done["state"] == "released", done["reasons"]
        out.append({**done, "video": api.download(bob, done["id"]), "token": bob})
    assert api.rt.pipeline.wait_idle(30)  # the head is signed and kept right after each release
    return out


def _audit(api, capsys) -> tuple[int, dict]:
    code = main(["--data-dir", str(api.rt.settings.data_dir), "log", "audit", "--json"])
    return code, json.loads(capsys.readouterr().out)


def _sql(api, statement: str) -> None:
    with api.rt.engine.begin() as conn:
        conn.exec_driver_sql(statement)


def test_every_head_the_service_signs_is_kept_and_verifies(database, make_api, capsys):
    api = make_api(**FAST, **database)
    _released(api, 2)
    with api.rt.session() as s:
        heads = s.exec(select(LogHead).order_by(LogHead.id)).all()
    assert [h.tree_size for h in heads] == [1, 2]  # one signed at each release
    for h in heads:
        SignedTreeHead(h.tree_size, h.root_hash, h.timestamp, h.alg, h.signature,
                       h.certificate_chain_pem).verify(api.rt.keys.trust_anchor_pem)
    assert api.call("GET", "/v1/log").get_json()["tree_size"] == 2
    code, report = _audit(api, capsys)
    assert code == 0 and report["intact"] and report["signed_heads"] == 2 and report["releases"] == 2
    assert report["problems"] == []
    assert main(["--data-dir", str(api.rt.settings.data_dir), "log", "audit"]) == 0
    out = capsys.readouterr().out
    assert "hash chain:  intact" in out and "signed heads: 2 kept" in out and "releases:    2, each in the log" in out


def test_a_process_that_did_not_sign_the_head_hands_out_the_kept_one(make_api):
    """Issue 12: another process (``consentgate verify``, a second API process, a restart) gives the head already
    kept for an unchanged log instead of signing and keeping one of its own; one whose signature was edited in the
    database, or that another signing chain signed, is not handed out: a new head is signed and kept."""
    from governance.log.services.heads import TreeHeads

    api = make_api(**FAST)
    _released(api, 1)
    with api.rt.session() as s:
        kept = s.exec(select(LogHead)).one()
        head = TreeHeads(api.rt.keys, api.rt.engine).signed(s)  # a fresh process's heads: nothing cached
        assert (head.timestamp, head.signature) == (kept.timestamp, kept.signature)
        assert len(s.exec(select(LogHead)).all()) == 1
    forged = "A" * len(kept.signature)
    _sql(api, f"UPDATE loghead SET signature = '{forged}'")
    with api.rt.session() as s:
        head = TreeHeads(api.rt.keys, api.rt.engine).signed(s)
        assert head.signature != forged
        head.verify(api.rt.keys.trust_anchor_pem)
        assert len(s.exec(select(LogHead)).all()) == 2  # the new head is kept
    other_chain = kept.certificate_chain_pem.replace("-----END CERTIFICATE-----\n", "", 1)
    _sql(api, f"UPDATE loghead SET certificate_chain_pem = '{other_chain}'")
    with api.rt.session() as s:
        assert TreeHeads(api.rt.keys, api.rt.engine).signed(s).certificate_chain_pem == kept.certificate_chain_pem
        assert len(s.exec(select(LogHead)).all()) == 3


def test_entries_cut_from_the_end_are_seen_by_the_audit_and_by_verify(database, make_api, capsys):
    api = make_api(**FAST, **database)
    first, second, third = _released(api, 3)
    # someone removes the last two entries and the Merkle nodes they made: what is left is a valid log of 1
    _sql(api, 'DELETE FROM logentry WHERE "index" >= 1')
    _sql(api, "DELETE FROM lognode WHERE NOT (level = 0 AND idx = 0)")
    code, report = _audit(api, capsys)
    assert code == 2 and not report["intact"]
    assert report["hash_chain_intact"] and report["merkle_tree_intact"]  # what the audit used to look at
    assert not report["signed_heads_intact"] and not report["releases_intact"]
    problems = "\n".join(report["problems"])
    assert "the log, which holds 1: entries were removed from its end" in problems
    for gone in (second, third):
        assert f"generation {gone['id']} (content id {gone['content_id']})" in problems
        assert "missing from the transparency log" in problems

    report = api.verify(third["video"]).get_json()
    assert report["c2pa"]["state"] == "Trusted"
    record = report["record"]
    assert record["generation_id"] == third["id"] and record["log_entry"] is None
    assert record["log_entry_problem"] == "released here but missing from the transparency log"
    assert any("missing from the transparency log" in w for w in report["warnings"])
    assert "missing from the transparency log" in report["summary"]

    # the service will not sign a head of the shorter log: that would vouch for the rewrite
    r = api.call("GET", "/v1/log")
    assert r.status_code == 503 and "entries were removed" in r.get_json()["detail"]
    kept = api.verify(first["video"]).get_json()
    assert kept["record"]["log_entry"]["index"] == 0 and kept["record"]["log_entry"]["signed_tree_head"] is None
    assert any("entries were removed" in w for w in kept["warnings"])


def test_a_thorough_truncation_still_leaves_the_releases_unlogged(database, make_api, capsys):
    """Entries, nodes and kept heads all removed: the released generations still name what is missing."""
    api = make_api(**FAST, **database)
    _, second = _released(api, 2)
    _sql(api, 'DELETE FROM logentry WHERE "index" = 1')
    _sql(api, "DELETE FROM lognode WHERE NOT (level = 0 AND idx = 0)")
    _sql(api, "DELETE FROM loghead WHERE tree_size > 1")
    code, report = _audit(api, capsys)
    assert code == 2 and report["signed_heads_intact"] and not report["releases_intact"]
    assert any(second["id"] in p for p in report["problems"])


def test_an_edited_date_is_seen(database, make_api, capsys):
    api = make_api(**FAST, **database)
    _released(api, 3)
    assert _audit(api, capsys)[0] == 0
    with api.rt.engine.connect() as conn:
        original = conn.exec_driver_sql('SELECT created_at FROM logentry WHERE "index" = 0').scalar_one()
    _sql(api, "UPDATE logentry SET created_at = created_at - INTERVAL '1 hour' WHERE \"index\" = 0"
         if database else "UPDATE logentry SET created_at = datetime(created_at, '-1 hour') WHERE \"index\" = 0")
    code, report = _audit(api, capsys)
    assert code == 2 and not report["hash_chain_intact"]
    assert any("entry 0's fields no longer give its hash" in p for p in report["problems"])
    with api.rt.engine.begin() as conn:
        conn.exec_driver_sql('UPDATE logentry SET created_at = %(t)s WHERE "index" = 0' if database else
                             'UPDATE logentry SET created_at = ? WHERE "index" = 0',
                             {"t": original} if database else (original,))
    assert _audit(api, capsys)[0] == 0


def test_an_edited_merkle_node_is_seen(database, make_api, capsys):
    api = make_api(**FAST, **database)
    _released(api, 3)
    assert _audit(api, capsys)[0] == 0
    # leaf 0's node is not on the path to the root of 3 entries: only a check of every node sees it edited
    _sql(api, "UPDATE lognode SET digest = '" + "ab" * 32 + "' WHERE level = 0 AND idx = 0")
    code, report = _audit(api, capsys)
    assert code == 2 and not report["merkle_tree_intact"]
    assert "Merkle node (0, 0) differs from the hash of the entries under it: it was edited" in report["problems"]


def test_a_released_file_replaced_on_disk_is_seen(database, make_api, capsys):
    """Found in review: the service would serve a replaced file under the logged hash as its ETag."""
    api = make_api(**database, **FAST)
    [gen] = _released(api, 1)
    assert _audit(api, capsys)[0] == 0
    (api.rt.settings.videos_dir / f"{gen['id']}.mp4").write_bytes(b"not the released video")
    code, report = _audit(api, capsys)
    assert code == 2 and any("replaced or altered on disk" in p for p in report["problems"]), report


def test_a_state_no_release_writes_is_reported_not_a_crash(database, make_api, capsys):
    """Found in review: an edited ``generation.state`` made the audit crash (exit 1) instead of naming it."""
    api = make_api(**database, **FAST)
    [gen] = _released(api, 1)
    if api.rt.engine.dialect.name == "postgresql":  # a native enum: the edit needs a value it knows
        _sql(api, "ALTER TYPE generationstate ADD VALUE IF NOT EXISTS 'FORGED'")
    _sql(api, f"UPDATE generation SET state = 'FORGED' WHERE id = '{gen['id']}'")
    code, report = _audit(api, capsys)
    assert code == 2 and any("'FORGED'" in p for p in report["problems"]), report


def test_a_missing_merkle_node_is_reported_with_exit_2(make_api, capsys):
    """Issue 18: a missing Merkle node raised a bare RuntimeError: ``log audit`` must name it (exit 2, as
    documented) and a proof that needs it is a problem+json saying the log is damaged, not an anonymous 500."""
    api = make_api(**FAST)
    _released(api, 3)
    _sql(api, "DELETE FROM lognode WHERE level = 1 AND idx = 0")  # on the path to the root of 3 entries
    code, report = _audit(api, capsys)
    assert code == 2 and not report["merkle_tree_intact"]
    assert "1 Merkle node(s) are missing, the first (1, 0)" in report["problems"]
    r = api.call("GET", "/v1/log/entries/2")
    assert r.status_code == 500 and r.mimetype == "application/problem+json"
    assert r.get_json()["type"].endswith("/log-damaged")
    assert r.get_json()["detail"] == "the transparency log's Merkle node (1, 0) is missing"


def _v3_hash(view: dict) -> str:
    """Entry hash version 3 recomputed from an entry as ``GET /v1/log/entries/<i>`` shows it (docs/security.md)."""
    import hashlib

    body = [3, view["index"], view["kind"], view["generation_id"], view["content_id"], view["video_sha256"],
            view["manifest_sha256"], view["prev_hash"], view["created_at"], view["release_index"],
            view["origin_index"], view["cause"]]
    return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()


def _included(view: dict, head: dict) -> bool:
    from provenance import merkle

    return merkle.verify_inclusion(bytes.fromhex(view["leaf_hash"]), view["index"], head["tree_size"],
                                   [bytes.fromhex(h) for h in view["inclusion_proof"]],
                                   bytes.fromhex(head["root_hash"]))


def test_a_takedown_is_logged_and_provable_from_the_log_alone(database, make_api, capsys):
    """Issue 14: an auditor holding only the signed head and two log entries, each with its inclusion proof, can
    show that a released file (by its hash) was later taken down, and by what kind of actor; ``/v1/verify`` of
    the file reports that entry with its proof; the audit holds the entry against the generation."""
    api = make_api(**FAST, **database)
    (done,) = _released(api, 1)
    bob = done["token"]
    assert api.call("DELETE", f"/v1/generations/{done['id']}", bob).status_code == 204
    assert api.call("DELETE", f"/v1/generations/{done['id']}", bob).status_code == 204  # again: nothing new logged

    head = api.call("GET", "/v1/log").get_json()
    assert head["tree_size"] == 2
    SignedTreeHead(head["tree_size"], head["root_hash"], head["timestamp"], head["alg"], head["signature"],
                   head["certificate_chain_pem"]).verify(api.rt.keys.trust_anchor_pem)
    release = api.call("GET", "/v1/log/entries/0").get_json()
    event = api.call("GET", "/v1/log/entries/1").get_json()
    assert (release["kind"], event["kind"], event["cause"], event["release_index"]) == ("release", "takedown",
                                                                                        "owner", 0)
    assert event["video_sha256"] == release["video_sha256"] == __import__("hashlib").sha256(done["video"]).hexdigest()
    assert _v3_hash(event) == event["entry_hash"] and event["prev_hash"] == release["entry_hash"]
    assert _included(release, head) and _included(event, head)

    report = api.verify(done["video"]).get_json()
    (logged,) = report["record"]["log_events"]
    signed = report["record"]["log_entry"]["signed_tree_head"]
    assert (logged["index"], logged["kind"], logged["cause"]) == (1, "takedown", "owner")
    assert _included(logged, signed) and logged["leaf_hash"] == event["leaf_hash"]
    assert "TAKEN DOWN" in report["summary"] and "(transparency log entry 1)" in report["summary"]
    code, audited = _audit(api, capsys)
    assert code == 0 and audited["problems"] == [], audited["problems"]

    # the event's fields are covered by its hash
    _sql(api, "UPDATE logentry SET cause = 'admin' WHERE kind = 'takedown'")
    code, audited = _audit(api, capsys)
    assert code == 2 and any("entry 1's fields no longer give its hash" in p for p in audited["problems"])
    _sql(api, "UPDATE logentry SET cause = 'owner' WHERE kind = 'takedown'")
    # the log and the database must agree on what is down
    _sql(api, "UPDATE generation SET taken_down_at = NULL")
    code, audited = _audit(api, capsys)
    assert code == 2 and any(f"log entry 1 says generation {done['id']} was taken down, but it is up here" in p
                             for p in audited["problems"]), audited["problems"]


def test_a_takedown_missing_from_the_log_is_seen(database, make_api, capsys):
    """Once the log records takedowns, one made without its entry (here: set in the database) is reported."""
    api = make_api(**FAST, **database)
    first, second = _released(api, 2)
    bob = first["token"]
    assert api.call("DELETE", f"/v1/generations/{first['id']}", bob).status_code == 204
    assert _audit(api, capsys)[0] == 0
    _sql(api, f"UPDATE generation SET taken_down_at = '2099-01-01 00:00:00+00:00' WHERE id = '{second['id']}'")
    code, audited = _audit(api, capsys)
    assert code == 2 and any(f"generation {second['id']} was taken down at" in p and "no takedown entry" in p
                             for p in audited["problems"]), audited["problems"]

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
        out.append({**done, "video": api.download(bob, done["id"])})
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
                       h.certificate_chain_pem).verify(api.rt.trust_anchor_pem)
    assert api.call("GET", "/v1/log").get_json()["tree_size"] == 2
    code, report = _audit(api, capsys)
    assert code == 0 and report["intact"] and report["signed_heads"] == 2 and report["releases"] == 2
    assert report["problems"] == []
    assert main(["--data-dir", str(api.rt.settings.data_dir), "log", "audit"]) == 0
    out = capsys.readouterr().out
    assert "hash chain:  intact" in out and "signed heads: 2 kept" in out and "releases:    2, each in the log" in out


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

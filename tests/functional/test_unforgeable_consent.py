"""Issue #9, "Consent that cannot be forged", each item as the story that went wrong.

1. A stored value a shared decision path cannot digest stopped every generation (a likeness labelled "!!!").
5. Answers differed by existence: a prompt naming an enrolled person was refused as such.

These tests use only the HTTP API and the tables, so they run against the code before the fix too (and fail
there).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlmodel import select

from governance.db import unit_of_work
from governance.models import AuditEvent, Character, Likeness
from policies.characters import CharacterRule


def _problem(r, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.get_json())
    assert r.mimetype == "application/problem+json"
    return r.get_json()


def _enroll(api, token, path, **form):
    return api.multipart("/v1/likenesses", token, [(path.name, path.read_bytes())], **form)


def _audit_tags(api) -> list[str]:
    with api.rt.session() as s:
        return [e.tag for e in s.exec(select(AuditEvent)).all()]


# -- 1. a stored value the gate cannot digest ----------------------------------------------------------------
def test_a_display_name_no_one_could_match_is_refused_when_it_is_written(make_api, faces_dir):
    api = make_api(worker="none")
    alice = api.account("alice")
    for bad, words in [("!!!", "needs a letter or digit"), ("\u200b\u200b", "U+200B"),
                       ("Barack\u200bObama", "U+200B"), ("evil\u202eeman", "U+202E"), ("x" * 121, "1-120"),
                       ("   ", "1-120")]:
        body = _problem(_enroll(api, alice, faces_dir / "obama.jpg", display_name=bad), 422)
        assert words in body["detail"] and body["reason"] == "invalid_display_name", (bad, body)
    with api.rt.session() as s:
        assert s.exec(select(Likeness)).all() == []
    r = _enroll(api, alice, faces_dir / "obama.jpg", display_name="  Me, at 30 (Zoë)  ")
    assert r.status_code == 201
    assert api.call("GET", f"/v1/likenesses/{r.get_json()['id']}", alice).get_json()["display_name"] == \
        "Me, at 30 (Zoë)"


def test_stored_values_the_gate_cannot_digest_fail_closed_for_themselves_alone(make_api, faces_dir, caplog):
    """Rows written before the checks existed, by hand, or by a bug: a likeness labelled "!!!" and characters
    whose alias, name or rule no longer make a policy. Every other request goes on; a prompt naming a broken
    character by a label that still reads is denied (its rule is unknown, so it fails closed), and the
    reason is logged."""
    api = make_api(worker="none")
    alice, bob, studio = api.account("alice"), api.account("bob"), api.account("studio", "rights_holder")
    lk = _enroll(api, alice, faces_dir / "obama.jpg").get_json()["id"]
    studio_id = api.call("GET", "/v1/me", studio).get_json()["id"]
    with unit_of_work(api.rt.engine) as s:
        s.get(Likeness, lk).display_name = "!!!"
        bad_alias = Character(owner_id=studio_id, name="Robo Pup", aliases=["\u200b"], rule=CharacterRule.ALLOW)
        nameless = Character(owner_id=studio_id, name="!!!", rule=CharacterRule.DENY)
        bad_rule = Character(owner_id=studio_id, name="Captain Comet", rule=CharacterRule.ALLOW)
        fine = Character(owner_id=studio_id, name="Frost Giant", rule=CharacterRule.ALLOW)
        s.add_all([bad_alias, nameless, bad_rule, fine])
        ids = bad_alias.id, nameless.id, bad_rule.id
    with api.rt.engine.begin() as conn:
        conn.execute(sa.text("UPDATE character SET rule = 'SOMETIMES' WHERE id = :id"), {"id": ids[2]})

    with caplog.at_level(logging.WARNING, logger="governance.services.characters"):
        r = api.call("POST", "/v1/generations", bob, json={"prompt": "a quiet lake at dawn", "seed": 1})
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["state"] == "prechecked"
    logged = " ".join(rec.getMessage() for rec in caplog.records)
    assert all(i in logged for i in ids), logged
    assert api.generate(bob, "the frost giant sleeps")["state"] == "prechecked"  # a sound character still allows
    for prompt, name in [("robo pup plays fetch", "Robo Pup"), ("CAPTAIN-COMET flies", "Captain Comet")]:
        gen = api.generate(bob, prompt)
        assert gen["state"] == "blocked", gen
        assert any(name in why and "cannot be read" in why for why in gen["reasons"]), gen["reasons"]


# -- 5. answers that differ by existence ---------------------------------------------------------------------
def test_naming_an_enrolled_person_in_a_prompt_reveals_nothing(make_api, faces_dir):
    """"Barack dancing" was refused as naming "an enrolled person" and the owner told who asked: anyone could
    learn who is enrolled, squat a famous name, and read other people's prompts. A display name is now the
    owner's own label: a prompt naming it fares exactly like one naming nobody enrolled. (The enrolled face
    is still protected where it cannot be faked: the scan of every output; see test_gate.py.)"""
    api = make_api(worker="none")
    alice, bob = api.account("alice"), api.account("bob")
    assert _enroll(api, alice, faces_dir / "obama.jpg", display_name="Barack").status_code == 201
    named, nobody = api.generate(bob, "Barack dancing"), api.generate(bob, "Joseph dancing")
    assert named["state"] == nobody["state"] == "prechecked"
    assert named["reasons"] == nobody["reasons"] == []
    views = [api.call("GET", f"/v1/generations/{g['id']}", bob).get_json() for g in (named, nobody)]
    assert views[0]["decisions"] == views[1]["decisions"]
    assert api.notifications(alice) == []

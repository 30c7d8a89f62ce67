"""Stored character rows that no longer make a policy fail closed for that character alone (issue #9 item 1;
test_unforgeable_consent.py drives the same through the API)."""

from __future__ import annotations

import doctest

import sqlalchemy as sa
from sqlmodel import Session

import policies.characters
from governance.accounts.models import Role
from governance.characters import services as characters_svc
from governance.characters.models import Character
from governance.db import init_db, make_engine, unit_of_work
from policies.characters import CharacterRule, judge, screen_prompt
from tests import factories


def test_docstring_examples():
    result = doctest.testmod(policies.characters)
    assert result.attempted > 0 and result.failed == 0


def test_stored_characters_that_make_no_policy_fail_closed_for_themselves_alone():
    engine = make_engine("sqlite://")
    init_db(engine)
    with unit_of_work(engine) as s:
        owner, _ = factories.account(s, "studio", Role.RIGHTS_HOLDER.value)
        rows = {
            "fine": Character(owner_id=owner.id, name="Frost Giant", rule=CharacterRule.LICENSEES_ONLY,
                              licensees=["acc_1"]),
            "alias": Character(owner_id=owner.id, name="Robo Pup", aliases=["robopup", "\u200b"],
                               rule=CharacterRule.ALLOW),
            "nameless": Character(owner_id=owner.id, name="!!!", aliases=["..."], rule=CharacterRule.ALLOW),
            "licensees": Character(owner_id=owner.id, name="Captain Comet", rule=CharacterRule.LICENSEES_ONLY),
            "rule": Character(owner_id=owner.id, name="Star Kid", rule=CharacterRule.ALLOW),
        }
        s.add_all(rows.values())
        ids = {k: v.id for k, v in rows.items()}
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE character SET licensees = '\"acc_1\"' WHERE id = :id"), {"id": ids["licensees"]})
        conn.execute(sa.text("UPDATE character SET rule = 'SOMETIMES' WHERE id = :id"), {"id": ids["rule"]})
    with Session(engine) as s:
        got = {p.character_id: p for p in characters_svc.policies(s)}
    assert set(got) == set(ids.values())
    fine = got[ids["fine"]]
    assert not fine.unreadable and fine.licensees == {"acc_1"}
    for key in ("alias", "nameless", "licensees", "rule"):
        assert got[ids[key]].unreadable and got[ids[key]].rule is CharacterRule.DENY, key
    assert got[ids["alias"]].name == "Robo Pup" and got[ids["alias"]].aliases == ("robopup",)
    assert got[ids["nameless"]].name == ids["nameless"]  # no label reads: only its id (reference images) finds it
    # prompts: the broken ones deny whoever names them, even their licensees; the sound one is untouched
    policies = list(got.values())
    assert [d.allowed for d in screen_prompt("robopup and captain comet", policies, "acc_1")] == [False, False]
    assert [d.allowed for d in screen_prompt("the frost giant", policies, "acc_1")] == [True]
    assert screen_prompt("!!! ... a quiet lake", policies, "acc_1") == []
    # outputs: a sighting of the nameless one (by its reference images) is denied too
    seen = judge(got[ids["nameless"]], "acc_1", "the output shows it")
    assert not seen.allowed and seen.rule == f"character:{ids['nameless']}:unreadable"

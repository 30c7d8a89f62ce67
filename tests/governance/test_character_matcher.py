"""The precheck's compiled character matcher is built once per change of the character set, per database."""

from __future__ import annotations

from sqlmodel import Session

from governance.accounts.models import Account
from governance.accounts.services import create_account
from governance.characters import services as characters
from governance.db import counter, init_db, make_engine, unit_of_work


def _db():
    engine = make_engine("sqlite://")
    init_db(engine)
    with unit_of_work(engine) as s:
        studio, _ = create_account(s, "studio", "rights_holder")
        studio_id = studio.id
    return engine, studio_id


def test_one_build_per_change_and_none_kept_from_a_session_that_changed_characters():
    engine, studio_id = _db()
    with Session(engine) as s:
        first = characters.matcher(s)
        assert len(first) == 0 and characters.matcher(s) is first  # nothing changed: the same build
    with unit_of_work(engine) as s:
        studio = s.get(Account, studio_id)
        characters.create_character(s, studio, "Captain Comet", [], "deny", [])
        mine = characters.matcher(s)  # this session sees its own, uncommitted character...
        assert len(mine) == 1 and mine is not characters.matcher(s)  # ...in a build that is not kept
    with Session(engine) as s:
        assert counter(s, "characters") == 1
        after = characters.matcher(s)
        assert len(after) == 1 and after is characters.matcher(s)
        assert after.screen("C4pt41n C0m3t", "bob")[0].disguises == ("leetspeak",)

    # a registration that rolls back leaves the kept build right
    try:
        with unit_of_work(engine) as s:
            studio = s.get(Account, studio_id)
            characters.create_character(s, studio, "Robo Pup", [], "deny", [])
            assert len(characters.matcher(s)) == 2
            raise RuntimeError("the request fails later")
    except RuntimeError:
        pass
    with Session(engine) as s:
        assert characters.matcher(s) is after

    with unit_of_work(engine) as s:
        studio = s.get(Account, studio_id)
        [ch] = characters.list_characters(s)
        characters.delete_character(s, studio, ch)
    with Session(engine) as s:
        assert len(characters.matcher(s)) == 0


def test_each_database_has_its_own_matcher():
    (one, studio_one), (two, _) = _db(), _db()
    with unit_of_work(one) as s:
        characters.create_character(s, s.get(Account, studio_one), "Captain Comet", [], "deny", [])
    with Session(one) as s, Session(two) as t:
        assert len(characters.matcher(s)) == 1 and len(characters.matcher(t)) == 0

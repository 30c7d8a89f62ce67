"""The authorization table's decisions, without HTTP (test_authz_table.py and test_unforgeable_consent.py in
tests/functional drive the same through the API)."""

from __future__ import annotations

import doctest

import pytest

import governance.authz
from governance import authz
from governance.authz import Action, Principal
from governance.errors import Forbidden, NotFound, Unauthenticated
from governance.models import Account, Role


def test_docstring_examples():
    result = doctest.testmod(governance.authz)
    assert result.attempted > 0 and result.failed == 0


def _account(role: Role) -> Account:
    return Account(name=f"x-{role.value}", role=role, token_hash=role.value)


def test_refusals_never_depend_on_existence():
    admin, regulator, creator = _account(Role.ADMIN), _account(Role.REGULATOR), _account(Role.CREATOR)
    with pytest.raises(Unauthenticated):
        authz.admit(Action.LIKENESS_READ, None)
    with pytest.raises(Forbidden, match="rights_holder"):
        authz.admit(Action.CHARACTER_CREATE, admin)  # refused by role: before any lookup
    assert authz.admit(Action.VERIFY, None) is None
    for who in (admin, regulator, creator):  # someone else's likeness: as if there were none
        with pytest.raises(NotFound, match="no likeness 'lk_1'"):
            authz.require(Action.LIKENESS_GRANT, who, owner=False, key="lk_1")
    authz.require(Action.LIKENESS_GRANT, creator, owner=True, key="lk_1")
    # a regulator may see anybody's generation, so a takedown it may not do is 403, not 404
    with pytest.raises(Forbidden):
        authz.require(Action.GENERATION_TAKEDOWN, regulator, owner=False, key="gen_1")
    with pytest.raises(NotFound):
        authz.require(Action.GENERATION_TAKEDOWN, creator, owner=False, key="gen_1")
    authz.require(Action.GENERATION_TAKEDOWN, admin, owner=False, key="gen_1")


def test_no_role_is_allowed_what_the_owner_alone_may_do():
    owner_only = [a for a, p in authz.TABLE.items() if p.resource is not None and a not in
                  (Action.GENERATION_READ, Action.GENERATION_VIDEO, Action.GENERATION_TAKEDOWN)]
    assert len(owner_only) == 9
    for action in owner_only:
        assert authz.TABLE[action].other == frozenset(), action
    assert authz.TABLE[Action.GENERATION_TAKEDOWN].other == {Principal.ADMIN}
    assert {a for a, p in authz.TABLE.items() if Principal.ADMIN in p.anyone and Principal.CREATOR not in p.anyone
            and Principal.REGULATOR not in p.anyone} == {Action.ACCOUNT_CREATE, Action.ACCOUNT_LIST,
                                                          Action.ACCOUNT_TOKEN}


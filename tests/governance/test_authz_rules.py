"""The authorization table's decisions, without HTTP (test_authz_table.py and test_unforgeable_consent.py in
tests/functional drive the same through the API)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import governance.authz
from governance import authz
from governance.accounts.models import Account, Role
from governance.authz import Action, Principal
from governance.errors import Forbidden, NotFound, Unauthenticated


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
                  (Action.GENERATION_READ, Action.GENERATION_VIDEO, Action.GENERATION_TAKEDOWN,
                   Action.GENERATION_CONSENT_RECORD)]
    assert len(owner_only) == 18  # with the review, approval and draft actions of held generations and the
    # likeness restrictions: owners alone, no role
    for action in owner_only:
        assert authz.TABLE[action].other == frozenset(), action
    assert authz.TABLE[Action.GENERATION_TAKEDOWN].other == {Principal.ADMIN}
    assert {a for a, p in authz.TABLE.items() if Principal.ADMIN in p.anyone and Principal.CREATOR not in p.anyone
            and Principal.REGULATOR not in p.anyone} == {Action.ACCOUNT_CREATE, Action.ACCOUNT_LIST,
                                                          Action.ACCOUNT_TOKEN, Action.DISPUTE_LIST,
                                                          Action.DISPUTE_READ, Action.DISPUTE_RESOLVE,
                                                          Action.FIGURE_LIST, Action.FIGURE_ADD,
                                                          Action.FIGURE_REMOVE, Action.NOTICE_DECIDE,
                                                          Action.GUARDIAN_LINK, Action.GUARDIAN_UNLINK,
                                                          Action.MINORITY_END}


ROOT = Path(__file__).resolve().parents[2]
_CELL = {(True, True): "any", (True, False): "own", (False, True): "others'", (False, False): "—"}


def authz_markdown() -> str:
    """The table as docs/security.md shows it: per route and principal, whose resource they may act on
    ("own", "any"), "yes" where no resource is involved, "—" never."""
    cols = [Principal.CREATOR, Principal.RIGHTS_HOLDER, Principal.REGULATOR, Principal.ADMIN, Principal.ANONYMOUS]
    lines = ["| endpoint | " + " | ".join(c.value for c in cols) + " | note |",
             "|---|" + "---|" * len(cols) + "---|"]
    for p in authz.TABLE.values():
        if p.resource is None:
            cells = ["yes" if c in p.owner else "—" for c in cols]
        else:
            cells = [_CELL[(c in p.owner, c in p.other)] for c in cols]
        lines.append(f"| `{p.route}` | " + " | ".join(cells) + f" | {p.note} |")
    return "\n".join(lines) + "\n"


def test_docs_security_shows_the_table_as_it_is():
    text = (ROOT / "docs" / "security.md").read_text()
    start, end = "<!-- authz-table:start -->\n", "<!-- authz-table:end -->"
    shown = text[text.index(start) + len(start):text.index(end)]
    assert shown == authz_markdown(), "docs/security.md's table is stale; paste:\n" + authz_markdown()


def test_the_readme_lists_every_endpoint():
    readme = (ROOT / "README.md").read_text()
    paths = r"((?:/sbr)?/v1/[^\s`]*|/metrics|/readyz|/openapi\.json|/docs(?:/assets/\{[^}]*\})?)"
    listed = {re.sub(r"\{[^}]*\}", "{}", re.sub(r"\[[^\]]*\]|\?.*", "", path)) for path in re.findall(paths, readme)}
    for p in authz.TABLE.values():
        path = re.sub(r"<[^>]*>", "{}", p.route.split()[1])
        assert path in listed, f"README.md's endpoint table does not list {p.route}"

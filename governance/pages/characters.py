"""Characters (rights holders): register characters (names, aliases, rule, licensees, attribution), simulate the
rule on past requests before saving it, add reference images, and read a character's usage as a table and a chart.
The page calls :mod:`governance.characters.services` and the helpers the API's views use (rate limits included)."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for
from sqlmodel import select

from governance.accounts.models import Account
from governance.authz import Action
from governance.characters import services as characters_svc
from governance.characters.models import Character
from governance.characters.views import add_references, label_font, simulate_rule
from governance.errors import Conflict, InvalidInput, RateLimited
from governance.pages.site import bp, page
from governance.web import caller, db
from policies.characters import CharacterRule

RULES = {CharacterRule.DENY.value: "Not at all", CharacterRule.LICENSEES_ONLY.value: "Licensees only",
         CharacterRule.ATTRIBUTION.value: "Anyone, if the release credits you",
         CharacterRule.ALLOW.value: "Anyone"}

#: What the green "Done" alert may say, by the code the redirect carries in ``done`` (never the link's own words).
DONE = {"saved": "saved", "references": "reference images added"}


def _list(text: str) -> list[str]:
    """A form's comma-separated (or one-per-line) list, blanks dropped."""
    return [x.strip() for x in text.replace("\n", ",").split(",") if x.strip()]


def _body() -> dict[str, Any]:
    """The register form as the API's body."""
    f = request.form
    return {"name": f.get("name", ""), "aliases": _list(f.get("aliases", "")), "rule": f.get("rule"),
            "licensees": _list(f.get("licensees", "")), "attribution": f.get("attribution") or None}


def _mine() -> list[Character]:
    me = caller()
    return list(db().exec(select(Character).where(Character.owner_id == me.id)
                          .order_by(Character.created_at)).all())  # type: ignore[arg-type]


@bp.get("/characters")
@page(Action.CHARACTER_CREATE)
def characters() -> str:
    return render_template("characters.html", characters=_mine(), rules=RULES, form={}, simulation=None)


@bp.post("/characters")
@page(Action.CHARACTER_CREATE)
def characters_post() -> Response | tuple[str, int]:
    """``action=simulate``: what the rule would have done (nothing saved); otherwise register the character."""
    body = _body()
    if request.form.get("action") == "simulate":
        try:
            result = simulate_rule(body)
        except (Conflict, InvalidInput, RateLimited) as e:  # said beside the form, which keeps what was typed
            return render_template("characters.html", characters=_mine(), rules=RULES, form=request.form,
                                   simulation=None, simulate_error=e.detail), e.status
        return render_template("characters.html", characters=_mine(), rules=RULES, form=request.form,
                               simulation=result), 200
    try:
        ch = characters_svc.create_character(db(), caller(), body["name"], body["aliases"], body["rule"],
                                             body["licensees"], body["attribution"], label=label_font())
    except InvalidInput as e:
        return render_template("characters.html", characters=_mine(), rules=RULES, form=request.form,
                               simulation=None, error=e.detail), 422
    db().commit()
    return redirect(url_for("pages.character", character_id=ch.id), 303)  # type: ignore[return-value]


def _stored_form(ch: Character) -> dict[str, str]:
    """The edit form filled with the character as registered (licensees by account name)."""
    names = [a.name if (a := db().get(Account, x)) is not None else x for x in ch.licensees]
    return {"name": ch.name, "aliases": ", ".join(ch.aliases), "rule": CharacterRule(ch.rule).value,
            "licensees": ", ".join(names), "attribution": ch.attribution or ""}


def _character_page(ch: Character, form: Any, status: int = 200, **extra: Any) -> tuple[str, int]:
    report = characters_svc.usage(db(), caller(), ch)
    bars = [("Allowed by the rule", report["allowed_by_rule"]), ("Denied by the rule", report["denied_by_rule"]),
            ("Released", report["released"]), ("Blocked", report["blocked"])]
    html = render_template("character.html", ch=ch, report=report, rules=RULES, bars=bars, form=form,
                           top=max([n for _, n in bars] + [1]), done=DONE.get(request.args.get("done", "")), **extra)
    return html, status


@bp.get("/characters/<character_id>")
@page(Action.CHARACTER_USAGE)
def character(character_id: str) -> tuple[str, int]:
    ch = characters_svc.owned_character(db(), caller(), character_id, Action.CHARACTER_USAGE)
    return _character_page(ch, _stored_form(ch))


@bp.post("/characters/<character_id>")
@page(Action.CHARACTER_DELETE)
def character_post(character_id: str) -> Response | tuple[str, int]:
    """Edit: ``action=simulate`` shows what the changed rule would have done (nothing saved); otherwise save it
    (:func:`~governance.characters.services.update_character`, the permission to delete it)."""
    ch = characters_svc.owned_character(db(), caller(), character_id, Action.CHARACTER_DELETE)
    body = _body()
    if request.form.get("action") == "simulate":
        try:
            result = simulate_rule(body)
        except (Conflict, InvalidInput, RateLimited) as e:
            return _character_page(ch, request.form, e.status, simulate_error=e.detail)
        return _character_page(ch, request.form, simulation=result)
    try:
        characters_svc.update_character(db(), caller(), ch, body["name"], body["aliases"], body["rule"],
                                        body["licensees"], body["attribution"], label=label_font())
    except InvalidInput as e:
        db().rollback()
        ch = characters_svc.owned_character(db(), caller(), character_id, Action.CHARACTER_DELETE)
        return _character_page(ch, request.form, 422, error=e.detail)
    db().commit()
    return redirect(url_for("pages.character", character_id=ch.id, done="saved"), 303)  # type: ignore[return-value]


@bp.post("/characters/<character_id>/references")
@page(Action.CHARACTER_REFERENCES)
def character_references(character_id: str) -> Response:
    add_references(character_id)  # the page shows how many it has now
    return redirect(url_for("pages.character", character_id=character_id, done="references"),  # type: ignore[return-value]
                    303)

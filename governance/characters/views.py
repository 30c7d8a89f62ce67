"""HTTP API v1, characters: rights holders register characters and their rules, add reference images, simulate a
rule on past requests and read its usage. Views parse, call one service, commit, serialize."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from governance import admission
from governance.authz import Action
from governance.characters import schemas as s
from governance.characters import services as characters_svc
from governance.characters.models import Character
from governance.columns import iso
from governance.errors import RateLimited
from governance.openapi import PageQuery, operation
from governance.ratelimit import retry_after
from governance.uploads import reference_images
from governance.web import (
    caller,
    db,
    guard,
    json_body,
    page_request,
    page_response,
    refuse_unknown_form_fields,
    runtime,
    uploaded_blobs,
)

bp = Blueprint("characters", __name__)  # nested in the v1 blueprint (governance.app): /v1/...


def label_font() -> characters_svc.LabelFont:
    """The visible label this service draws (settings ``label_language``, ``label_font``): what credits must fit."""
    return characters_svc.LabelFont.of(runtime().settings)


def _character_view(c: Character) -> dict[str, Any]:
    return {"id": c.id, "owner": c.owner_id, "name": c.name, "aliases": c.aliases, "rule": c.rule.value,
            "licensees": c.licensees, "attribution": c.attribution, "created_at": iso(c.created_at)}


@bp.post("/characters")
@guard(Action.CHARACTER_CREATE)
@operation(ok={201: s.CharacterOut}, json=s.CharacterIn, errors=[409], tags=["characters"])
def create_character() -> tuple[Response, int]:
    owner = caller()
    body = json_body("name", "aliases", "rule", "licensees", "attribution")
    ch = characters_svc.create_character(db(), owner, body.get("name"), body.get("aliases"), body.get("rule"),
                                         body.get("licensees"), body.get("attribution"), label=label_font())
    db().commit()
    return jsonify(_character_view(ch)), 201


@bp.get("/characters")
@guard(Action.CHARACTER_LIST)
@operation(ok={200: s.CharacterPage}, query=PageQuery, tags=["characters"])
def list_characters() -> Response:
    """Oldest first, paged (``limit``, ``cursor``; ``next``)."""
    return page_response("characters", characters_svc.page_characters(db(), page_request("characters")),
                         _character_view)


@bp.post("/characters/<character_id>/references")
@guard(Action.CHARACTER_REFERENCES)
@operation(ok={201: s.ReferencesOut}, form=s.ReferencesForm, errors=[409, 415, 503], tags=["characters"])
def add_character_references(character_id: str) -> tuple[Response, int]:
    """Reference images (multipart ``media``, photos or stills) the visual check compares outputs with."""
    return jsonify({"character": character_id, "references": add_references(character_id)}), 201


def add_references(character_id: str) -> int:
    """Add the request's reference images (multipart ``media``) to the caller's character, committed: how many it
    has now. 409 when the service has no image encoder."""
    actor = caller()
    ch = characters_svc.owned_character(db(), actor, character_id, Action.CHARACTER_REFERENCES)
    refuse_unknown_form_fields()
    with admission.expensive(runtime().throttles, "reference") as meter:
        images = reference_images(uploaded_blobs(), meter)
        total = characters_svc.add_references(db(), actor, ch, images, runtime().detectors.character_encoder)
    db().commit()
    return total


@bp.post("/characters/simulate")
@guard(Action.CHARACTER_SIMULATE)
@operation(ok={200: s.SimulationOut}, json=s.SimulateIn, errors=[409, 429], tags=["characters"])
def simulate_character() -> Response:
    """What a rule would have done to past requests, before it is registered: k-anonymous counts only
    (characters_svc.simulate); rate-limited per account, since each call is a guess about other people."""
    body = json_body("name", "aliases", "rule", "licensees", "last", "attribution")
    return jsonify(simulate_rule(body))


def simulate_rule(body: dict[str, Any]) -> dict[str, Any]:
    """:func:`~governance.characters.services.simulate` for the caller, rate-limited per account (429)."""
    owner = caller()
    wait = runtime().throttles.simulate.acquire(f"account:{owner.id}")
    if wait:
        raise RateLimited(f"at most {runtime().settings.simulate_per_minute} simulations a minute per account; "
                          f"retry in {retry_after(wait)} s", retry_after=retry_after(wait))
    return (characters_svc.simulate(db(), owner, body.get("name"), body.get("aliases"), body.get("rule"),
                                    body.get("licensees"), body.get("last"), body.get("attribution"),
                                    label=label_font()))


@bp.get("/characters/<character_id>/usage")
@guard(Action.CHARACTER_USAGE)
@operation(ok={200: s.UsageOut}, tags=["characters"])
def character_usage(character_id: str) -> Response:
    actor = caller()
    return jsonify(characters_svc.usage(db(), actor, characters_svc.owned_character(
        db(), actor, character_id, Action.CHARACTER_USAGE)))


@bp.delete("/characters/<character_id>")
@guard(Action.CHARACTER_DELETE)
@operation(ok={204: None}, tags=["characters"])
def delete_character(character_id: str) -> tuple[str, int]:
    actor = caller()
    characters_svc.delete_character(db(), actor, characters_svc.owned_character(
        db(), actor, character_id, Action.CHARACTER_DELETE))
    db().commit()
    return "", 204

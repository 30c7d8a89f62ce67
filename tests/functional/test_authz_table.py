"""Who may do what, as a table: every endpoint x every principal (four roles and the anonymous caller) x the
caller's relation to the resource in the path (their own, or someone else's), with the exact HTTP status.

``SPEC`` below is the rule written out by hand; the test drives HTTP against it, and checks that it and the
code's table (:data:`governance.authz.TABLE`) name every route the service has and agree cell by cell.
Success statuses are the ones this world gives an allowed caller: 409 for reference images means "allowed,
and the service has no image encoder"; everything else is a plain 2xx.

The stories behind the table (issue #9: an admin forging consent, answers that tell whether something
exists) are in test_unforgeable_consent.py.
"""

from __future__ import annotations

import io
import itertools
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from governance import authz
from governance.accounts.models import Contact, Role
from governance.accounts.services import create_account
from governance.app import create_app
from governance.authz import Principal
from governance.characters.models import Character
from governance.columns import utcnow
from governance.db import unit_of_work
from governance.generations.models import Generation, GenerationLikeness, GenerationState
from governance.likenesses.models import Dispute, DisputeKind, Figure, Grant, Likeness
from governance.log.services import translog
from policies.characters import CharacterRule
from policies.consent import Verification

C, R, G, A, ANON = (Principal.CREATOR, Principal.RIGHTS_HOLDER, Principal.REGULATOR, Principal.ADMIN,
                    Principal.ANONYMOUS)
COLUMNS = (C, R, G, A, ANON)
OWN, OTHERS = "own", "others"  # the caller's relation to the resource the path names

# route -> {relation: statuses for (creator, rights_holder, regulator, admin, anonymous)}; routes not keyed by a
# resource have one row, under OWN.
SPEC: dict[str, dict[str, tuple[int, int, int, int, int]]] = {
    "GET /v1/me":                                          {OWN: (200, 200, 200, 200, 401)},
    "POST /v1/me/token":                                   {OWN: (200, 200, 200, 200, 401)},
    "POST /v1/accounts":                                   {OWN: (403, 403, 403, 201, 401)},
    "GET /v1/accounts":                                    {OWN: (403, 403, 403, 200, 401)},
    "POST /v1/accounts/<ref>/token":                       {OWN: (403, 403, 403, 200, 401)},
    "GET /v1/contacts":                                    {OWN: (200, 200, 200, 200, 401)},
    "PUT /v1/contacts/<ref>":                              {OWN: (204, 204, 204, 204, 401)},
    "DELETE /v1/contacts/<ref>":                           {OWN: (204, 204, 204, 204, 401)},
    "POST /v1/likenesses":                                 {OWN: (201, 201, 201, 201, 401)},
    "GET /v1/likenesses":                                  {OWN: (200, 200, 200, 200, 401)},
    "GET /v1/likenesses/<likeness_id>":                    {OWN: (200, 200, 200, 200, 401),
                                                            OTHERS: (404, 404, 404, 404, 401)},
    "PATCH /v1/likenesses/<likeness_id>":                  {OWN: (200, 200, 200, 200, 401),
                                                            OTHERS: (404, 404, 404, 404, 401)},
    "DELETE /v1/likenesses/<likeness_id>":                 {OWN: (204, 204, 204, 204, 401),
                                                            OTHERS: (404, 404, 404, 404, 401)},
    "PUT /v1/likenesses/<likeness_id>/grants/<account_ref>": {OWN: (201, 201, 201, 201, 401),
                                                              OTHERS: (404, 404, 404, 404, 401)},
    "DELETE /v1/likenesses/<likeness_id>/grants/<account_ref>": {OWN: (204, 204, 204, 204, 401),
                                                                 OTHERS: (404, 404, 404, 404, 401)},
    "GET /v1/likenesses/<likeness_id>/generations":        {OWN: (200, 200, 200, 200, 401),
                                                            OTHERS: (404, 404, 404, 404, 401)},
    "POST /v1/likenesses/challenges":                      {OWN: (201, 201, 201, 201, 401)},
    # (allowed on one's own: 409, the likeness here is already live)
    "POST /v1/likenesses/<likeness_id>/verification":      {OWN: (409, 409, 409, 409, 401),
                                                            OTHERS: (404, 404, 404, 404, 401)},
    "GET /v1/likenesses/<likeness_id>/restrictions":       {OWN: (200, 200, 200, 200, 401),
                                                            OTHERS: (404, 404, 404, 404, 401)},
    "PUT /v1/likenesses/<likeness_id>/restrictions":       {OWN: (200, 200, 200, 200, 401),
                                                            OTHERS: (404, 404, 404, 404, 401)},
    "GET /v1/disputes":                                    {OWN: (403, 403, 403, 200, 401)},
    "GET /v1/disputes/<dispute_id>":                       {OWN: (403, 403, 403, 200, 401)},
    "POST /v1/disputes/<dispute_id>/resolve":              {OWN: (403, 403, 403, 200, 401)},
    "GET /v1/figures":                                     {OWN: (403, 403, 403, 200, 401)},
    "POST /v1/figures":                                    {OWN: (403, 403, 403, 201, 401)},
    "DELETE /v1/figures/<figure_id>":                      {OWN: (403, 403, 403, 204, 401)},
    "POST /v1/characters":                                 {OWN: (403, 201, 403, 403, 401)},
    "GET /v1/characters":                                  {OWN: (200, 200, 200, 200, 401)},
    "POST /v1/characters/simulate":                        {OWN: (403, 409, 403, 403, 401)},
    "POST /v1/characters/<character_id>/references":       {OWN: (403, 409, 403, 403, 401),
                                                            OTHERS: (403, 404, 403, 403, 401)},
    "GET /v1/characters/<character_id>/usage":             {OWN: (403, 200, 403, 403, 401),
                                                            OTHERS: (403, 404, 403, 403, 401)},
    "DELETE /v1/characters/<character_id>":                {OWN: (403, 204, 403, 403, 401),
                                                            OTHERS: (403, 404, 403, 403, 401)},
    "POST /v1/generations":                                {OWN: (202, 403, 403, 403, 401)},
    "GET /v1/generations":                                 {OWN: (200, 200, 200, 200, 401)},
    "GET /v1/generations/<generation_id>":                 {OWN: (200, 200, 200, 200, 401),
                                                            OTHERS: (404, 404, 200, 200, 401)},
    "GET /v1/generations/<generation_id>/video":           {OWN: (200, 200, 200, 200, 401),
                                                            OTHERS: (404, 404, 200, 200, 401)},
    "GET /v1/generations/<generation_id>/consent-record":  {OWN: (409, 409, 409, 409, 401),
                                                            OTHERS: (404, 404, 409, 409, 401)},
    "DELETE /v1/generations/<generation_id>":              {OWN: (204, 204, 204, 204, 401),
                                                            OTHERS: (404, 404, 403, 204, 401)},
    # a released generation holds no question for anyone: allowed, and 409 for want of one
    "GET /v1/generations/<generation_id>/review":          {OWN: (200, 200, 200, 200, 401),
                                                            OTHERS: (404, 404, 403, 403, 401)},
    "POST /v1/generations/<generation_id>/review":         {OWN: (409, 409, 409, 409, 401),
                                                            OTHERS: (404, 404, 403, 403, 401)},
    # nor a draft waiting for anyone: 409 for want of one
    "GET /v1/generations/<generation_id>/draft":           {OWN: (409, 409, 409, 409, 401),
                                                            OTHERS: (404, 404, 403, 403, 401)},
    "POST /v1/generations/<generation_id>/draft":          {OWN: (409, 409, 409, 409, 401),
                                                            OTHERS: (404, 404, 403, 403, 401)},
    # a released generation holds no approval for anyone: reading is allowed, answering 409 for want of one
    "GET /v1/generations/<generation_id>/approval":        {OWN: (200, 200, 200, 200, 401),
                                                            OTHERS: (404, 404, 403, 403, 401)},
    "POST /v1/generations/<generation_id>/approval":       {OWN: (409, 409, 409, 409, 401),
                                                            OTHERS: (404, 404, 403, 403, 401)},
    "PUT /v1/accounts/<ref>/guardian":                     {OWN: (403, 403, 403, 200, 401)},
    "DELETE /v1/accounts/<ref>/guardian":                  {OWN: (403, 403, 403, 200, 401)},
    "POST /v1/accounts/<ref>/majority":                    {OWN: (403, 403, 403, 200, 401)},
    "GET /v1/guardian/approvals":                          {OWN: (200, 200, 200, 200, 401)},
    "POST /v1/guardian/approvals/<approval_id>":           {OWN: (200, 200, 200, 200, 401)},
    # takedown notices: anyone files one and follows it by its private token; admins decide, regulators read
    # (409 for the face: no challenge asked for yet)
    "POST /v1/notices":                                    {OWN: (201, 201, 201, 201, 201)},
    "GET /v1/notices/<notice_id>/status":                  {OWN: (200, 200, 200, 200, 200)},
    "POST /v1/notices/<notice_id>/challenge":              {OWN: (201, 201, 201, 201, 201)},
    "POST /v1/notices/<notice_id>/face":                   {OWN: (409, 409, 409, 409, 409)},
    "GET /v1/notices":                                     {OWN: (403, 403, 200, 200, 401)},
    "GET /v1/notices/<notice_id>":                         {OWN: (403, 403, 200, 200, 401)},
    "POST /v1/notices/<notice_id>/decision":               {OWN: (403, 403, 403, 200, 401)},
    "POST /v1/notices/<notice_id>/counter":                {OWN: (200, 200, 200, 200, 401)},
    "POST /v1/verify":                                     {OWN: (200, 200, 200, 200, 200)},
    "GET /v1/log":                                         {OWN: (200, 200, 200, 200, 200)},
    "GET /v1/log/entries/<int:index>":                     {OWN: (200, 200, 200, 200, 200)},
    "GET /v1/log/consistency":                             {OWN: (200, 200, 200, 200, 200)},
    "GET /v1/log/trust-anchor":                            {OWN: (200, 200, 200, 200, 200)},
    "GET /sbr/v1/matches/byBinding":                       {OWN: (200, 200, 200, 200, 200)},
    "POST /sbr/v1/matches/byBinding":                      {OWN: (200, 200, 200, 200, 200)},
    "POST /sbr/v1/matches/byContent":                      {OWN: (200, 200, 200, 200, 200)},
    "GET /sbr/v1/manifests/<manifest_id>":                 {OWN: (200, 200, 200, 200, 200)},
    "GET /sbr/v1/services/supportedAlgorithms":            {OWN: (200, 200, 200, 200, 200)},
    "GET /v1/notifications":                               {OWN: (200, 200, 200, 200, 401)},
    "POST /v1/notifications/read":                         {OWN: (204, 204, 204, 204, 401)},
    "GET /openapi.json":                                   {OWN: (200, 200, 200, 200, 200)},
    "GET /docs":                                           {OWN: (200, 200, 200, 200, 200)},
    "GET /docs/assets/<name>":                             {OWN: (200, 200, 200, 200, 200)},
    "GET /metrics":                                        {OWN: (200, 200, 200, 200, 200)},
    "GET /readyz":                                         {OWN: (200, 200, 200, 200, 200)},
}

ENROLL_FACES = {C: "obama.jpg", R: "biden2.jpg", G: "alex-lacamoire.png", A: "lin-manuel-miranda.png"}


@dataclass
class World:
    """One service for the whole table; each case makes its own accounts and resources in it."""

    app: Flask
    faces_dir: Path
    jpeg: bytes
    counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def rt(self) -> Any:
        return self.app.extensions["consentgate"]

    def account(self, role: Role) -> tuple[str, str, str]:
        """(id, name, token) of a new account."""
        name = f"{role.value.replace('_', '-')}-{next(self.counter)}"
        with unit_of_work(self.rt.engine) as s:
            acc, token = create_account(s, name, role.value)
            return acc.id, name, token

    def likeness(self, owner_id: str) -> str:
        from detectors.enroll import Template

        emb = np.random.default_rng(next(self.counter)).normal(size=(1, 128)).astype(np.float32)
        template = Template(emb / np.linalg.norm(emb), "dlib-resnet-v1", np.zeros((8, 8, 3), np.uint8))
        with unit_of_work(self.rt.engine) as s:
            lk = Likeness(owner_id=owner_id, backend=template.backend, template=template.to_bytes(), embeddings=1,
                          verification=Verification.LIVE)  # able to consent, as if verified live
            s.add(lk)
            return lk.id

    def add(self, *rows: Any) -> None:
        with unit_of_work(self.rt.engine) as s:
            for row in rows:
                s.add(row)


@dataclass
class Case:
    """What one request needs: the caller, the resource in its path and its relation to it."""

    world: World
    who: Principal
    relation: str
    me_id: str = ""
    me_name: str = ""
    token: str | None = None
    other_id: str = ""
    other_name: str = ""
    resource: str = ""


def _likeness(case: Case) -> str:
    case.resource = case.world.likeness(case.me_id if case.relation == OWN and case.me_id else case.other_id)
    return case.resource


def _character(case: Case) -> str:
    owner = case.me_id if case.relation == OWN and case.me_id else case.other_id
    ch = Character(owner_id=owner, name=f"Character {next(case.world.counter)}", rule=CharacterRule.DENY)
    case.world.add(ch)
    return ch.id


def _generation(case: Case) -> str:
    """A released generation. Its owner is its requester when the caller is a creator (only creators request),
    otherwise the owner of a likeness it shows; someone else's involves neither."""
    w = case.world
    mine = case.relation == OWN and bool(case.me_id)
    requester = case.me_id if mine and case.who is C else case.other_id
    likeness = w.likeness(case.me_id if mine and case.who is not C else case.other_id)
    gen = Generation(requester_id=requester, prompt="a quiet lake", seed=1, likeness_ids=[likeness],
                     state=GenerationState.RELEASED, content_id=secrets.token_hex(8), released_at=utcnow())
    w.add(gen)
    w.add(GenerationLikeness(generation_id=gen.id, likeness_id=likeness, named=True))
    (w.rt.settings.videos_dir / f"{gen.id}.mp4").write_bytes(b"\x00" * 64)
    return gen.id


def _manifest(case: Case) -> str:
    """The manifest id of a release (public: anyone may fetch a manifest store)."""
    from governance.softbinding.models import ReleaseManifest

    gen_id = _generation(case)
    manifest_id = f"urn:c2pa:{uuid.uuid4()}"
    with unit_of_work(case.world.rt.engine) as s:
        gen = s.get(Generation, gen_id)
        s.add(ReleaseManifest(generation_id=gen_id, manifest_id=manifest_id, content_id=gen.content_id,
                              store=b"jumb", provider="ConsentGate", system="consentgate-procedural",
                              system_version="0.1"))
    return manifest_id


def _ward(case: Case) -> str:
    """The other account, made a minor's with a guardian (the caller when there is one)."""
    from governance.guardians.models import Guardianship

    guardian = case.me_id or case.world.account(Role.CREATOR)[0]
    case.world.add(Guardianship(minor_id=case.other_id, guardian_id=guardian))
    return case.other_name


def _ward_request(case: Case) -> str:
    """A grant the caller's ward asked the caller (their guardian) to approve."""
    from governance.guardians.models import GuardianApproval

    _ward(case)
    a = GuardianApproval(likeness_id=case.world.likeness(case.other_id), grantee_id=case.world.account(Role.CREATOR)[0],
                         minor_id=case.other_id, guardian_id=case.me_id or case.other_id)
    case.world.add(a)
    return a.id


def _notice(case: Case, *, taken_down: bool = False) -> str:
    """An open notice filed for oneself about a released generation (its private token kept in ``case.resource``);
    with ``taken_down``, one that took the caller's own generation down, open to a counter-notice."""
    import hashlib
    from datetime import timedelta

    from governance.notices.models import Notice, NoticeState, OnBehalfOf

    w = case.world
    gen = Generation(requester_id=case.me_id or case.other_id, prompt="a quiet lake", seed=1,
                     state=GenerationState.RELEASED, content_id=secrets.token_hex(8), released_at=utcnow(),
                     taken_down_at=utcnow() if taken_down else None)
    w.add(gen)
    case.resource = secrets.token_urlsafe(16)
    n = Notice(token_hash=hashlib.sha256(case.resource.encode()).hexdigest(), contact="a@example.org",
               on_behalf_of=OnBehalfOf.SELF, statement="it shows my face", generation_id=gen.id, source="generation_id",
               state=NoticeState.TAKEN_DOWN if taken_down else NoticeState.OPEN,
               counter_deadline=utcnow() + timedelta(days=1) if taken_down else None)
    w.add(n)
    return n.id


def _dispute(case: Case) -> str:
    """An open double claim between two other accounts' likenesses (an admin resolving it is no party)."""
    w = case.world
    holder_id, _, _ = w.account(Role.CREATOR)
    holder, claimant = w.likeness(holder_id), w.likeness(case.other_id)
    d = Dispute(kind=DisputeKind.DOUBLE_CLAIM, likeness_id=claimant, claimant_id=case.other_id,
                holder_likeness_id=holder, holder_id=holder_id)
    w.add(d)
    return d.id


def _figure(case: Case) -> str:
    from detectors.enroll import Template

    emb = np.random.default_rng(next(case.world.counter)).normal(size=(1, 128)).astype(np.float32)
    t = Template(emb / np.linalg.norm(emb), "dlib-resnet-v1", np.zeros((8, 8, 3), np.uint8))
    fig = Figure(name=f"Figure {next(case.world.counter)}", backend=t.backend, template=t.to_bytes(), embeddings=1)
    case.world.add(fig)
    return fig.id


def _figure_photo(case: Case) -> dict[str, Any]:
    face = case.world.faces_dir / "alex_lacamoire2.jpg"
    fields = MultiDict({"name": f"Figure {next(case.world.counter)}",
                        "media": FileStorage(io.BytesIO(face.read_bytes()), filename=face.name)})
    boundary, body = encode_multipart(fields)
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def _grant_target(case: Case) -> str:
    _, name, _ = case.world.account(Role.CREATOR)
    return name


def _revoke_target(case: Case) -> str:
    lk = _likeness(case)
    grantee_id, name, _ = case.world.account(Role.CREATOR)
    case.world.add(Grant(likeness_id=lk, grantee_id=grantee_id))
    return f"/v1/likenesses/{lk}/grants/{name}"


def _contact_to_remove(case: Case) -> str:
    if case.me_id:
        case.world.add(Contact(owner_id=case.me_id, contact_id=case.other_id))
    return f"/v1/contacts/{case.other_name}"


def _multipart(name: str, data: bytes) -> dict[str, Any]:
    boundary, body = encode_multipart(MultiDict({"media": FileStorage(io.BytesIO(data), filename=name)}))
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def _enroll(case: Case) -> dict[str, Any]:
    face = case.world.faces_dir / ENROLL_FACES.get(case.who, "obama.jpg")
    return _multipart(face.name, face.read_bytes())


def _image(case: Case) -> dict[str, Any]:
    return _multipart("a.jpg", case.world.jpeg)


# route -> how to make the request: (path builder, request kwargs builder)
Request = tuple[Callable[[Case], str], Callable[[Case], dict[str, Any]]]
NONE: Callable[[Case], dict[str, Any]] = lambda case: {}  # noqa: E731
REQUESTS: dict[str, Request] = {
    "GET /v1/me": (lambda c: "/v1/me", NONE),
    "POST /v1/me/token": (lambda c: "/v1/me/token", NONE),
    "POST /v1/accounts": (lambda c: "/v1/accounts",
                          lambda c: {"json": {"name": f"made-{next(c.world.counter)}", "role": "creator"}}),
    "GET /v1/accounts": (lambda c: "/v1/accounts", NONE),
    "POST /v1/accounts/<ref>/token": (lambda c: f"/v1/accounts/{c.other_name}/token", NONE),
    "GET /v1/contacts": (lambda c: "/v1/contacts", NONE),
    "PUT /v1/contacts/<ref>": (lambda c: f"/v1/contacts/{c.other_name}", NONE),
    "DELETE /v1/contacts/<ref>": (_contact_to_remove, NONE),
    "POST /v1/likenesses": (lambda c: "/v1/likenesses", _enroll),
    "GET /v1/likenesses": (lambda c: "/v1/likenesses", NONE),
    "GET /v1/likenesses/<likeness_id>": (lambda c: f"/v1/likenesses/{_likeness(c)}", NONE),
    "PATCH /v1/likenesses/<likeness_id>": (lambda c: f"/v1/likenesses/{_likeness(c)}",
                                           lambda c: {"json": {"mode": "everyone"}}),
    "DELETE /v1/likenesses/<likeness_id>": (lambda c: f"/v1/likenesses/{_likeness(c)}", NONE),
    "PUT /v1/likenesses/<likeness_id>/grants/<account_ref>":
        (lambda c: f"/v1/likenesses/{_likeness(c)}/grants/{_grant_target(c)}", NONE),
    "DELETE /v1/likenesses/<likeness_id>/grants/<account_ref>": (_revoke_target, NONE),
    "GET /v1/likenesses/<likeness_id>/generations": (lambda c: f"/v1/likenesses/{_likeness(c)}/generations", NONE),
    "POST /v1/likenesses/challenges": (lambda c: "/v1/likenesses/challenges", NONE),
    "POST /v1/likenesses/<likeness_id>/verification": (
        lambda c: f"/v1/likenesses/{_likeness(c)}/verification", NONE),
    "GET /v1/likenesses/<likeness_id>/restrictions": (lambda c: f"/v1/likenesses/{_likeness(c)}/restrictions", NONE),
    "PUT /v1/likenesses/<likeness_id>/restrictions": (lambda c: f"/v1/likenesses/{_likeness(c)}/restrictions",
                                                      lambda c: {"json": {"categories": ["violence"]}}),
    "GET /v1/disputes": (lambda c: "/v1/disputes", NONE),
    "GET /v1/disputes/<dispute_id>": (lambda c: f"/v1/disputes/{_dispute(c)}", NONE),
    "POST /v1/disputes/<dispute_id>/resolve": (lambda c: f"/v1/disputes/{_dispute(c)}/resolve",
                                               lambda c: {"json": {"outcome": "distinct", "reason": "twins"}}),
    "GET /v1/figures": (lambda c: "/v1/figures", NONE),
    "POST /v1/figures": (lambda c: "/v1/figures", _figure_photo),
    "DELETE /v1/figures/<figure_id>": (lambda c: f"/v1/figures/{_figure(c)}", NONE),
    "POST /v1/characters": (lambda c: "/v1/characters",
                            lambda c: {"json": {"name": f"Made {next(c.world.counter)}", "rule": "deny"}}),
    "GET /v1/characters": (lambda c: "/v1/characters", NONE),
    "POST /v1/characters/simulate": (lambda c: "/v1/characters/simulate",
                                     lambda c: {"json": {"name": "Robo Pup", "rule": "deny"}}),
    "POST /v1/characters/<character_id>/references": (lambda c: f"/v1/characters/{_character(c)}/references",
                                                      _image),
    "GET /v1/characters/<character_id>/usage": (lambda c: f"/v1/characters/{_character(c)}/usage", NONE),
    "DELETE /v1/characters/<character_id>": (lambda c: f"/v1/characters/{_character(c)}", NONE),
    "POST /v1/generations": (lambda c: "/v1/generations", lambda c: {"json": {"prompt": "a quiet lake", "seed": 1}}),
    "GET /v1/generations": (lambda c: "/v1/generations", NONE),
    "GET /v1/generations/<generation_id>": (lambda c: f"/v1/generations/{_generation(c)}", NONE),
    "GET /v1/generations/<generation_id>/video": (lambda c: f"/v1/generations/{_generation(c)}/video", NONE),
    "GET /v1/generations/<generation_id>/consent-record": (
        lambda c: f"/v1/generations/{_generation(c)}/consent-record", NONE),
    "DELETE /v1/generations/<generation_id>": (lambda c: f"/v1/generations/{_generation(c)}",
                                               lambda c: {"json": {"reason": "a court order (case 12)"}}),
    "GET /v1/generations/<generation_id>/review": (lambda c: f"/v1/generations/{_generation(c)}/review", NONE),
    "POST /v1/generations/<generation_id>/review": (lambda c: f"/v1/generations/{_generation(c)}/review",
                                                    lambda c: {"json": {"decision": "dismiss"}}),
    "GET /v1/generations/<generation_id>/draft": (lambda c: f"/v1/generations/{_generation(c)}/draft", NONE),
    "POST /v1/generations/<generation_id>/draft": (lambda c: f"/v1/generations/{_generation(c)}/draft",
                                                   lambda c: {"json": {"decision": "approve"}}),
    "GET /v1/generations/<generation_id>/approval": (lambda c: f"/v1/generations/{_generation(c)}/approval", NONE),
    "POST /v1/generations/<generation_id>/approval": (lambda c: f"/v1/generations/{_generation(c)}/approval",
                                                      lambda c: {"json": {"decision": "approve"}}),
    "PUT /v1/accounts/<ref>/guardian": (lambda c: f"/v1/accounts/{c.other_name}/guardian",
                                        lambda c: {"json": {"guardian": c.world.account(Role.CREATOR)[1]}}),
    "DELETE /v1/accounts/<ref>/guardian": (lambda c: f"/v1/accounts/{_ward(c)}/guardian", NONE),
    "POST /v1/accounts/<ref>/majority": (lambda c: f"/v1/accounts/{_ward(c)}/majority",
                                         lambda c: {"json": {"reason": "passport checked: born 2008-01-02"}}),
    "GET /v1/guardian/approvals": (lambda c: "/v1/guardian/approvals", NONE),
    "POST /v1/guardian/approvals/<approval_id>": (lambda c: f"/v1/guardian/approvals/{_ward_request(c)}",
                                                  lambda c: {"json": {"decision": "deny"}}),
    "POST /v1/notices": (lambda c: "/v1/notices", lambda c: {"json": {
        "contact": "a@example.org", "on_behalf_of": "self", "good_faith": True,
        "statement": "it shows my face without my consent", "generation_id": _generation(c)}}),
    "GET /v1/notices/<notice_id>/status": (lambda c: f"/v1/notices/{_notice(c)}/status?token={c.resource}", NONE),
    "POST /v1/notices/<notice_id>/challenge": (
        lambda c: f"/v1/notices/{_notice(c)}/challenge?token={c.resource}", NONE),
    "POST /v1/notices/<notice_id>/face": (lambda c: f"/v1/notices/{_notice(c)}/face?token={c.resource}", NONE),
    "GET /v1/notices": (lambda c: "/v1/notices", NONE),
    "GET /v1/notices/<notice_id>": (lambda c: f"/v1/notices/{_notice(c)}", NONE),
    "POST /v1/notices/<notice_id>/decision": (lambda c: f"/v1/notices/{_notice(c)}/decision",
                                              lambda c: {"json": {"outcome": "reject", "reason": "not shown"}}),
    "POST /v1/notices/<notice_id>/counter": (lambda c: f"/v1/notices/{_notice(c, taken_down=True)}/counter",
                                             lambda c: {"json": {"statement": "it is a consenting actor",
                                                                 "good_faith": True}}),
    "POST /v1/verify": (lambda c: "/v1/verify", _image),
    "GET /v1/log": (lambda c: "/v1/log", NONE),
    "GET /v1/log/entries/<int:index>": (lambda c: "/v1/log/entries/0", NONE),
    "GET /v1/log/consistency": (lambda c: "/v1/log/consistency?old_size=1", NONE),
    "GET /v1/log/trust-anchor": (lambda c: "/v1/log/trust-anchor", NONE),
    "GET /sbr/v1/matches/byBinding": (lambda c: "/sbr/v1/matches/byBinding?alg=dev.consentgate.watermark.1"
                                                "&value=AAAAAAAAAAA=", NONE),
    "POST /sbr/v1/matches/byBinding": (lambda c: "/sbr/v1/matches/byBinding", lambda c: {"json": {
        "alg": "dev.consentgate.watermark.1", "value": "AAAAAAAAAAA="}}),
    "POST /sbr/v1/matches/byContent": (lambda c: "/sbr/v1/matches/byContent",
                                       lambda c: {"data": c.world.jpeg, "content_type": "image/jpeg"}),
    "GET /sbr/v1/manifests/<manifest_id>": (lambda c: f"/sbr/v1/manifests/{_manifest(c)}", NONE),
    "GET /sbr/v1/services/supportedAlgorithms": (lambda c: "/sbr/v1/services/supportedAlgorithms", NONE),
    "GET /v1/notifications": (lambda c: "/v1/notifications", NONE),
    "POST /v1/notifications/read": (lambda c: "/v1/notifications/read", NONE),
    "GET /openapi.json": (lambda c: "/openapi.json", NONE),
    "GET /docs": (lambda c: "/docs", NONE),
    "GET /docs/assets/<name>": (lambda c: "/docs/assets/swagger-ui.css", NONE),
    "GET /metrics": (lambda c: "/metrics", NONE),
    "GET /readyz": (lambda c: "/readyz", NONE),
}

CELLS = [(route, relation, who) for route, rows in SPEC.items() for relation in rows for who in COLUMNS]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, faces_dir: Path, c2pa_dir: Path) -> Iterator[World]:
    app = create_app({"data_dir": tmp_path_factory.mktemp("authz") / "var", "worker": "none",
                      "verify_per_minute": 100_000, "max_upload_bytes": 8 * 1024 * 1024})
    w = World(app, faces_dir, (c2pa_dir / "no_manifest.jpg").read_bytes())
    with unit_of_work(w.rt.engine) as s:  # one released entry, so the log's proofs have something to prove
        translog.append(s, "gen_0", "00" * 8, "aa" * 32, "bb" * 32)
    yield w
    w.rt.close()


def _routes(app: Flask) -> dict[str, Any]:
    out = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(("v1.", "ops.", "sbr.", "openapi.")):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                out[f"{method} {rule.rule}"] = app.view_functions[rule.endpoint]
    return out


def test_the_table_covers_every_route_and_every_route_is_guarded_by_its_own_action(world):
    routes = _routes(world.app)
    assert set(SPEC) == set(routes) == set(REQUESTS) == {p.route for p in authz.TABLE.values()}
    assert len(authz.TABLE) == len(routes)  # one action per route, no route shared
    for route, view in routes.items():
        action = getattr(view, "authz_action", None)
        assert action is not None, f"{route} is not guarded"
        assert authz.TABLE[action].route == route, (route, action)
        keyed = authz.TABLE[action].resource is not None
        assert set(SPEC[route]) == ({OWN, OTHERS} if keyed else {OWN}), route


@pytest.mark.parametrize("route,relation,who", CELLS, ids=[f"{r} [{rel}] {w.value}" for r, rel, w in CELLS])
def test_the_code_table_agrees_with_the_spec(route, relation, who):
    [action] = [a for a, p in authz.TABLE.items() if p.route == route]
    status = SPEC[route][relation][COLUMNS.index(who)]
    assert authz.allows(action, who, owner=relation == OWN) == (status < 400 or status == 409), (route, who)


@pytest.mark.parametrize("route,relation,who", CELLS, ids=[f"{r} [{rel}] {w.value}" for r, rel, w in CELLS])
def test_every_endpoint_by_every_principal_on_its_own_and_others(world, route, relation, who):
    case = Case(world, who, relation)
    case.other_id, case.other_name, _ = world.account(Role.CREATOR)
    if who is not ANON:
        case.me_id, case.me_name, case.token = world.account(Role(who.value))
    path_of, kwargs_of = REQUESTS[route]
    method = route.split()[0]
    path = path_of(case)
    headers = {"Authorization": f"Bearer {case.token}"} if case.token else {}
    r = world.app.test_client().open(path, method=method, headers=headers, **kwargs_of(case))
    try:
        expected = SPEC[route][relation][COLUMNS.index(who)]
        body = r.get_json(silent=True)
        assert r.status_code == expected, (r.status_code, body)
        if expected >= 400:
            assert r.mimetype == "application/problem+json"
    finally:
        r.close()


def test_someone_elses_resource_answers_exactly_like_an_unknown_id(world):
    """The 404 for a likeness, character or generation that is not yours has the body of a missing one."""
    case = Case(world, R, OTHERS)
    case.other_id, case.other_name, _ = world.account(Role.CREATOR)
    case.me_id, case.me_name, case.token = world.account(Role.RIGHTS_HOLDER)
    client = world.app.test_client()
    auth = {"Authorization": f"Bearer {case.token}"}
    for method, theirs, unknown in [
        ("GET", f"/v1/likenesses/{_likeness(case)}", "/v1/likenesses/lk_0123456789abcdef"),
        ("GET", f"/v1/likenesses/{_likeness(case)}/generations", "/v1/likenesses/lk_0123456789abcdef/generations"),
        ("DELETE", f"/v1/characters/{_character(case)}", "/v1/characters/ch_0123456789abcdef"),
        ("GET", f"/v1/generations/{_generation(case)}", "/v1/generations/gen_0123456789abcdef"),
    ]:
        a, b = client.open(theirs, method=method, headers=auth), client.open(unknown, method=method, headers=auth)
        their_id, unknown_id = theirs.split("/")[3], unknown.split("/")[3]
        assert a.status_code == b.status_code == 404
        assert a.get_data(as_text=True).replace(their_id, unknown_id) == b.get_data(as_text=True)

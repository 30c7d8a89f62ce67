"""The gate's invariant, as a property over random interleavings of consent changes and pipeline stages:

no file is ever served that lacks a valid signature, a watermark naming its record, and a consent record that
was valid at release time; nothing that was not released can be downloaded.
"""

from __future__ import annotations

import random

import pytest
from sqlmodel import select

from governance.models import AuditEvent

STAGES = ("generated", "scanned", "sealed")


@pytest.mark.parametrize("seed", [1, 2])
def test_no_unconsented_release(api, faces_dir, seed):
    rng = random.Random(seed)
    alice, bob, regulator = api.account("alice"), api.account("bob"), api.account("regulator", "regulator")
    lk = api.enroll_live(alice, faces_dir / "obama.jpg")
    plan: dict[str, str] = {}  # stage -> action, consumed by the next generation that reaches it
    holds: dict[str, bool] = {"grant": False}

    def set_grant(on: bool) -> None:
        method = "PUT" if on else "DELETE"
        r = api.call(method, f"/v1/likenesses/{lk['id']}/grants/bob", alice)
        assert r.status_code in (200, 201, 204, 404)
        holds["grant"] = on

    for stage in STAGES:
        def hook(generation_id: str, stage: str = stage) -> None:
            action = plan.pop(stage, None)
            if action is not None:
                set_grant(action == "grant")

        api.rt.pipeline.on(stage, hook)

    gens = []
    for _ in range(4):
        set_grant(rng.random() < 0.8)
        if rng.random() < 0.6:
            plan[rng.choice(STAGES)] = rng.choice(["grant", "revoke"])
        gen = api.generate(bob, rng.choice(["beach", "forest at night", "city"]), [lk["id"]], seed=rng.randrange(99))
        gens.append(api.wait(bob, gen["id"]))
        plan.clear()

    assert {g["state"] for g in gens} <= {"released", "blocked"}
    for g in gens:
        r = api.call("GET", f"/v1/generations/{g['id']}/video", bob)
        r.close()
        if g["state"] != "released":
            assert r.status_code == 409
            continue
        report = api.verify(api.download(bob, g["id"])).get_json()
        assert report["c2pa"]["state"] == "Trusted"
        assert report["watermark"]["payload"] == g["content_id"]
        relied = report["c2pa"]["governance"]["likenesses"]
        assert relied and all(x["grant"] and x["basis"] == "grant" for x in relied)
        # the grants it relied on, as a regulator opens the manifest's commitments to them
        openings = api.call("GET", f"/v1/generations/{g['id']}/consent-record", regulator).get_json()["openings"]
        grants = {o["value"] for o in openings
                  if o["kind"] == "grant" and o["commitment"] == relied[o["entry"]]["grant"]}
        assert len(grants) == len(relied)
        # the grant it relied on was not revoked before the release committed
        with api.rt.session() as s:
            revokes = s.exec(select(AuditEvent).where(AuditEvent.tag == "likeness:grant:revoke")).all()
            for ev in revokes:
                if ev.data["grant"] in grants:
                    assert ev.created_at.replace(tzinfo=None) > _parse(g["released_at"]).replace(tzinfo=None)
    assert api.leftovers() == []


def _parse(ts: str):
    from datetime import datetime

    return datetime.fromisoformat(ts)

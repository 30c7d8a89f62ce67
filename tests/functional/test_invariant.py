"""The gate's invariant, as a property over random interleavings of consent changes and pipeline stages:

no file is ever served that lacks a valid signature, a watermark naming its record, and a consent record that
was valid at release time; nothing that was not released can be downloaded.

Each seed draws a few generations of one likeness: whether the grant holds when the request is made, and
whether it is granted or revoked while the generation is in one of its stages. The gate checks consent
before generating, scanning, sealing and releasing, so the outcome is known in advance: released exactly
when the grant held at every check. Across the seeds both outcomes must occur (a gate that blocked
everything, or released everything, fails), and every block must be a consent block.
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlmodel import select

from governance.models import AuditEvent

STAGES = ("generated", "scanned", "sealed")
#: 10 seeds x 2 generations (~2 s each here): every stage gets both actions, and both outcomes occur.
SEEDS = range(10)
RUNS = 2


def test_no_unconsented_release(api, faces_dir):
    alice, bob, regulator = api.account("alice"), api.account("bob"), api.account("regulator", "regulator")
    lk = api.enroll_live(alice, faces_dir / "obama.jpg")
    plan: dict[str, str] = {}  # stage -> action, consumed by the next generation that reaches it

    def set_grant(on: bool) -> None:
        method = "PUT" if on else "DELETE"
        r = api.call(method, f"/v1/likenesses/{lk['id']}/grants/bob", alice)
        assert r.status_code in (200, 201, 204, 404)

    for stage in STAGES:
        def hook(generation_id: str, stage: str = stage) -> None:
            action = plan.pop(stage, None)
            if action is not None:
                set_grant(action == "grant")

        api.rt.pipeline.on(stage, hook)

    runs = []  # (seed, generation, expected state, the plan it ran under)
    for seed in SEEDS:
        rng = random.Random(seed)
        for _ in range(RUNS):
            held = rng.random() < 0.8
            set_grant(held)
            if rng.random() < 0.6:
                plan[rng.choice(STAGES)] = rng.choice(["grant", "revoke"])
            drawn = dict(plan)
            expected = "released" if held and "revoke" not in drawn.values() else "blocked"
            gen = api.generate(bob, rng.choice(["beach", "forest at night", "city"]), [lk["id"]],
                               seed=rng.randrange(99))
            runs.append((seed, api.wait(bob, gen["id"]), expected, {"held": held, **drawn}))
            plan.clear()

    for seed, g, expected, drawn in runs:
        assert g["state"] == expected, (seed, drawn, g["state"], g.get("reasons"))
    states = [g["state"] for _, g, _, _ in runs]
    assert "released" in states and "blocked" in states, states
    for seed, g, _, drawn in runs:
        r = api.call("GET", f"/v1/generations/{g['id']}/video", bob)
        r.close()
        if g["state"] != "released":
            assert r.status_code == 409
            assert g["reasons"] and all("consent" in reason or "grant" in reason for reason in g["reasons"]), (
                seed, drawn, g["reasons"])
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
                    released_at = datetime.fromisoformat(g["released_at"]).replace(tzinfo=None)
                    assert ev.created_at.replace(tzinfo=None) > released_at
    assert api.leftovers() == []

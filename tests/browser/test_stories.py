"""Each user's story walked end to end in Chromium against the running service (see conftest.py)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

from .conftest import check_page, record_live_check, require_chromium, sign_in, start_live_check

require_chromium()


def test_a_creator_generates_and_downloads_and_a_visitor_verifies_it_and_a_tampered_copy(server, new_page,
                                                                                        tmp_path: Path) -> None:
    page = new_page(server)
    page.goto("/")
    check_page(page, "home")
    sign_in(page, server.account("cara"))
    check_page(page, "home-signed-in")
    page.get_by_role("link", name="Generate").first.click()
    page.get_by_label("Prompt").fill("a paper boat on a pond")
    page.get_by_label("Seed").fill("11")
    check_page(page, "generate")
    page.get_by_role("button", name="Request the video").click()
    page.wait_for_url(re.compile(r".*/generations/gen_[0-9a-f]{16}$"))
    page.locator('#status[data-state="released"]').wait_for(timeout=120_000)  # htmx polls the stages
    check_page(page, "generation-released")
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download the video").click()
    video = tmp_path / "video.mp4"
    dl.value.save_as(video)
    data = video.read_bytes()
    assert data[4:8] == b"ftyp"
    tampered = bytearray(data)
    mid = len(tampered) // 2
    tampered[mid:mid + 64] = bytes(b ^ 0xFF for b in tampered[mid:mid + 64])
    (tmp_path / "tampered.mp4").write_bytes(bytes(tampered))

    visitor = new_page(server)  # anonymous: a fresh browser context
    visitor.goto("/verify")
    check_page(visitor, "verify")
    visitor.get_by_label("File to check").set_input_files(str(video))
    visitor.get_by_role("button", name="Verify").click()
    verdict = visitor.locator("[data-verdict]")
    assert verdict.get_attribute("data-verdict") == "released"
    assert "Made here and released" in verdict.inner_text()
    assert visitor.locator('[data-proof="ok"]').is_visible()
    check_page(visitor, "verify-released")
    visitor.get_by_label("File to check").set_input_files(str(tmp_path / "tampered.mp4"))
    visitor.get_by_role("button", name="Verify").click()
    assert visitor.locator("[data-verdict]").get_attribute("data-verdict") == "tampered"
    check_page(visitor, "verify-tampered")


def test_an_owner_enrolls_with_the_live_challenge_then_grants_and_revokes(server, new_page) -> None:

    finn = server.account("finn")
    page = new_page(server)
    sign_in(page, server.account("olga"))
    page.get_by_role("link", name="My face").first.click()
    check_page(page, "my-face-empty")
    start_live_check(page, server)
    check_page(page, "my-face-challenge")
    record_live_check(page)
    assert "done=enrolled" in page.url, page.locator("#live-status").inner_text()
    assert page.locator('[data-verification="live"]').is_visible()
    lk = page.locator("[data-likeness]").get_attribute("data-likeness")
    page.get_by_label("Approve an account by name").fill("finn")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r".*done=granted"))
    assert page.locator(".grants").inner_text().startswith("finn")
    # finn uses the face; the owner sees the video (a thumbnail) on her page and takes it down
    r = server.api("POST", "/v1/generations", finn, json={"prompt": "finn and olga on a bench", "likenesses": [lk]})
    assert r.status_code == 202, r.get_json()
    gen = r.get_json()["id"]
    deadline = time.monotonic() + 120
    while server.api("GET", f"/v1/generations/{gen}", finn).get_json()["state"] not in ("released", "blocked"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    page.reload()
    row = page.locator(f'tr[data-generation="{gen}"]')
    thumb = row.locator("img.thumb")
    thumb.wait_for()
    # on a busy machine the image is still loading when its element appears: wait until it loaded or broke
    page.wait_for_function("img => img.complete", arg=thumb.element_handle())
    assert thumb.evaluate("img => img.naturalWidth > 0"), "the thumbnail did not load"
    check_page(page, "my-face")
    row.get_by_role("button", name="Take down the video finn and olga on a bench").click()
    page.wait_for_url(re.compile(r".*done=taken"))
    assert "taken down" in page.locator(f'tr[data-generation="{gen}"]').inner_text()
    assert server.api("GET", f"/v1/generations/{gen}", finn).get_json()["taken_down"] is True
    page.get_by_role("button", name="Revoke finn").click()
    page.wait_for_url(re.compile(r".*done=revoked"))
    assert page.locator(".grants").count() == 0
    assert server.api("GET", f"/v1/likenesses/{lk}", server.account("nobody-else")).status_code == 404


def test_a_rights_holder_simulates_a_rule_and_registers_a_character(make_server, new_page) -> None:
    from sqlmodel import select

    from governance.db import unit_of_work
    from governance.generations.models import Generation

    quiet = make_server(worker="none", daily_quota=100)  # the past requests need only their precheck
    for i in range(6):
        token = quiet.account(f"maker{i}")
        for prompt in ("Robo Pup plays fetch", "a quiet lake", "the robo-pup at night", "a harbour"):
            assert quiet.api("POST", "/v1/generations", token, json={"prompt": prompt}).status_code == 202
    with unit_of_work(quiet.rt.engine) as s:
        for g in s.exec(select(Generation)).all():
            g.created_at = g.created_at - timedelta(days=2)
    page = new_page(quiet)
    sign_in(page, quiet.account("studio", "rights_holder"))
    page.get_by_role("link", name="Characters").first.click()
    check_page(page, "characters")
    page.get_by_label("Name", exact=True).fill("Robo Pup")
    page.get_by_label("Other names").fill("robopup")
    page.get_by_label("Who may use it").select_option("deny")
    page.get_by_role("button", name="Simulate").click()
    assert page.locator("[data-would-deny]").get_attribute("data-would-deny") == "12"
    check_page(page, "characters-simulated")
    page.get_by_role("button", name="Register").click()
    page.wait_for_url(re.compile(r".*/characters/ch_[0-9a-f]{16}$"))
    for i in range(6):  # the registered rule at work: requests naming it, counted in its usage from the next day
        token = quiet.account(f"fan{i}")
        r = quiet.api("POST", "/v1/generations", token, json={"prompt": f"Robo Pup, take {i}"})
        assert r.status_code == 202 and r.get_json()["state"] == "blocked"
    with unit_of_work(quiet.rt.engine) as s:
        for g in s.exec(select(Generation).where(Generation.prompt.startswith("Robo Pup, take"))).all():
            g.created_at = g.created_at - timedelta(days=1)
    page.reload()
    assert page.locator("#usage").is_visible() and page.locator("figure.chart").is_visible()
    assert "Denied by the rule 6" in page.locator("#usage").inner_text().replace("\t", " ")
    check_page(page, "character-usage")
    page.get_by_label("Who may use it").select_option("attribution")
    page.get_by_label("Credit a release must show").fill("Robo Pup by Studio")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*done=saved"))
    assert page.get_by_text("Robo Pup by Studio").first.is_visible()




def _live_likeness(server, token: str, photo: str, mode: str | None = "everyone") -> str:
    """A likeness enrolled from a photo through the API, then marked live in the database (the live check's own
    story is above): able to consent; its mode set to ``mode`` (None: left as enrolled)."""
    from governance.columns import utcnow
    from governance.db import unit_of_work
    from governance.likenesses.models import Likeness
    from policies.consent import Verification

    from .conftest import TESTDATA

    path = TESTDATA / "faces" / photo
    r = server.api("POST", "/v1/likenesses", token, data={"media": (path.open("rb"), path.name)},
                   content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    lk = r.get_json()["id"]
    with unit_of_work(server.rt.engine) as s:
        row = s.get(Likeness, lk)
        row.verification, row.verified_at = Verification.LIVE, utcnow()
    if mode is not None:
        assert server.api("PATCH", f"/v1/likenesses/{lk}", token, json={"mode": mode}).status_code == 200
    return lk


def _settled(server, token: str, gen: str, states: tuple[str, ...] = ("released", "blocked")) -> str:
    deadline = time.monotonic() + 120
    while (state := server.api("GET", f"/v1/generations/{gen}", token).get_json()["state"]) not in states:
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    return state


def test_an_owner_restricts_her_face_and_answers_the_prompts_held_for_her(server, new_page) -> None:
    pia, quin = server.account("pia"), server.account("quin")
    lk = _live_likeness(server, pia, "lin-manuel-miranda.png")  # a face no other story enrolls
    page = new_page(server)
    sign_in(page, pia)
    page.get_by_role("link", name="My face").first.click()
    form = page.locator(f'form[data-restrictions="{lk}"]')
    form.get_by_label("Violence").check()
    form.get_by_label("Words or phrases it must never say").fill("I love crypto")
    form.get_by_label("A note to people who use it").fill("no ads, please")
    form.get_by_role("button", name="Save restrictions").click()
    page.wait_for_url(re.compile(r".*done=restricted"))
    assert page.locator(f'form[data-restrictions="{lk}"]').get_by_label("Violence").is_checked()
    check_page(page, "my-face-restrictions")
    got = server.api("GET", f"/v1/likenesses/{lk}/restrictions", pia).get_json()
    assert got["categories"] == ["violence"] and got["phrases"] == ["I love crypto"]

    # quin's prompts may show violence: each is held, and waits for pia on her page
    held = []
    for seed in (1, 2):
        r = server.api("POST", "/v1/generations", quin, json={"prompt": "a cowboy holds a gun at dusk",
                                                              "likenesses": [lk], "seed": seed})
        assert r.status_code == 202 and r.get_json()["state"] == "held", r.get_json()
        held.append(r.get_json()["id"])
    page.reload()
    nav = page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("Awaiting you"))
    assert nav.locator(".count").get_attribute("data-count") == "2"
    nav.click()
    page.wait_for_url(re.compile(r".*/me/requests$"))
    first = page.locator(f'[data-approval="{held[0]}"]')
    assert "a cowboy holds a gun at dusk" in first.inner_text() and "may be violence" in first.inner_text()
    check_page(page, "awaiting-you")
    first.get_by_role("button", name="Approve the prompt a cowboy holds a gun at dusk").click()
    page.wait_for_url(re.compile(r".*done=approved"))
    assert page.get_by_role("status").inner_text().startswith("Done: you approved")
    assert _settled(server, quin, held[0]) == "released"
    page.locator(f'[data-approval="{held[1]}"]').get_by_role("button", name=re.compile("^Deny")).click()
    page.wait_for_url(re.compile(r".*done=denied"))
    assert page.locator("[data-approval]").count() == 0 and page.locator("#no-approvals").is_visible()
    check_page(page, "awaiting-you-done")
    assert server.api("GET", f"/v1/generations/{held[1]}", quin).get_json()["state"] == "blocked"


def test_an_admin_links_a_guardian_who_approves_a_wards_grant_request(server, new_page) -> None:
    admin, gina, tim = server.account("root", "admin"), server.account("gina"), server.account("tim")
    server.account("ben")
    lk = _live_likeness(server, tim, "biden.jpg", mode=None)
    desk = new_page(server)
    sign_in(desk, admin)
    desk.get_by_role("link", name="Guardians").first.click()
    check_page(desk, "admin-guardians")
    desk.get_by_label("The minor's account (name or id)").first.fill("tim")
    desk.get_by_label("Their guardian's account (name or id)").fill("gina")
    desk.get_by_role("button", name="Link the guardian").click()
    desk.wait_for_url(re.compile(r".*done=linked"))
    check_page(desk, "admin-guardians-done")
    # tim's grant now waits for gina
    assert server.api("PUT", f"/v1/likenesses/{lk}/grants/ben", tim).status_code == 202
    page = new_page(server)
    sign_in(page, gina)
    page.get_by_role("link", name=re.compile("Awaiting you")).first.click()
    page.locator("#wards a").click()
    page.wait_for_url(re.compile(r".*/me/guardian$"))
    check_page(page, "guardian")
    page.get_by_role("button", name="Approve: let ben use tim's face").click()
    page.wait_for_url(re.compile(r".*done=ward-approved"))
    assert page.locator("#none").is_visible()
    check_page(page, "guardian-done")
    assert len(server.api("GET", f"/v1/likenesses/{lk}", tim).get_json()["grants"]) == 1


def test_sign_in_a_wrong_token_and_a_refusal_read_well(server, new_page) -> None:
    page = new_page(server)
    page.goto("/generate")  # an account's page sends the anonymous to sign in, and back afterwards
    page.wait_for_url(re.compile(r".*/sign-in\?next=/generate$"))
    check_page(page, "sign-in")
    page.get_by_label("Account token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").is_visible()
    check_page(page, "sign-in-error")
    page.get_by_label("Account token").fill(server.account("rhea", "rights_holder"))
    page.get_by_role("button", name="Sign in").click()
    assert "creator" in page.get_by_role("alert").inner_text()  # back at /generate: not a creator (403)
    check_page(page, "forbidden")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/$"))
    assert page.get_by_role("banner").get_by_role("link", name="Sign in").is_visible()

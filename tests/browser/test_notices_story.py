"""Takedown notices walked in Chromium (see conftest.py): a person with no account reports a video and follows it
by the private link; a reviewer decides it from the queue; the video's requester answers with a counter-notice.
And a person filing for themselves proves their face with the live check (the fake camera) and the video comes down
at once. Every page reached is checked with axe."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from .conftest import check_page, record_live_check, require_chromium, sign_in, start_live_check

require_chromium()


def _released(server: Any, token: str, prompt: str, likenesses: list[str] | None = None) -> str:
    r = server.api("POST", "/v1/generations", token, json={"prompt": prompt, "likenesses": likenesses or []})
    assert r.status_code == 202, r.get_json()
    gen = r.get_json()["id"]
    deadline = time.monotonic() + 120
    while (state := server.api("GET", f"/v1/generations/{gen}", token).get_json()["state"]) not in ("released",
                                                                                                   "blocked"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state == "released"
    return gen


def _file(page: Any, behalf: str, statement: str) -> None:
    page.get_by_label(behalf).check()
    page.get_by_label("What is wrong").fill(statement)
    page.get_by_label("How a reviewer can reach you").fill("sister@example.org")
    page.get_by_label("I state in good faith").check()
    page.get_by_role("button", name="File the notice").click()


def test_an_anonymous_person_reports_a_video_a_reviewer_takes_it_down_and_the_requester_answers(
        server, new_page, tmp_path: Path) -> None:
    vic = server.account("vic")
    gen = _released(server, vic, "a crowd at the harbour")
    r = server.api("GET", f"/v1/generations/{gen}/video", vic)
    video = tmp_path / "found-online.mp4"
    video.write_bytes(r.data)
    r.close()

    filer = new_page(server)  # no account
    filer.goto("/")
    filer.get_by_role("link", name="Report a video").first.click()
    filer.wait_for_url(re.compile(r".*/report$"))
    check_page(filer, "report")
    # a video that is not one released here: the page says so, nothing is filed
    filer.get_by_label("Or its generation id").fill("gen_0000000000000000")
    _file(filer, "Someone who cannot file this themselves", "This video shows my brother, who cannot file.")
    assert "no video released here" in filer.get_by_role("alert").inner_text()
    check_page(filer, "report-error")
    filer.get_by_label("Or its generation id").fill("")
    filer.get_by_label("The video file").set_input_files(str(video))
    _file(filer, "Someone who cannot file this themselves", "This video shows my brother, who cannot file.")
    filer.wait_for_url(re.compile(r".*/notices/ntc_[0-9a-f]+\?token=.*"))
    assert filer.locator("#notice").get_attribute("data-state") == "open"
    assert filer.locator("#live").count() == 0  # filed for someone else: a reviewer decides
    link = filer.get_by_label("Your private link").input_value()
    assert "token=ntc_" in link
    notice = re.search(r"/notices/(ntc_[0-9a-f]+)", link).group(1)  # type: ignore[union-attr]
    check_page(filer, "notice-filed")

    reviewer = new_page(server)
    sign_in(reviewer, server.account("rex", "admin"))
    reviewer.get_by_role("link", name="Notices").first.click()
    reviewer.wait_for_url(re.compile(r".*/review/notices$"))
    check_page(reviewer, "notices")
    reviewer.get_by_role("link", name=notice).click()
    assert "This video shows my brother" in reviewer.locator("#statement").inner_text()
    check_page(reviewer, "notice-review")
    reviewer.get_by_label("Take the video down").check()
    reviewer.get_by_label("Reason").fill("the filer's account of the video holds")
    reviewer.get_by_role("button", name="Decide").click()
    reviewer.wait_for_url(re.compile(r".*done=decided"))
    assert reviewer.locator("#notice").get_attribute("data-state") == "taken_down"
    check_page(reviewer, "notice-decided")
    assert server.api("GET", f"/v1/generations/{gen}", vic).get_json()["taken_down"] is True

    filer.goto(link)  # the private link, kept
    assert filer.locator("#notice").get_attribute("data-state") == "taken_down"
    assert "the filer's account of the video holds" in filer.locator("#timeline").inner_text()

    requester = new_page(server)
    sign_in(requester, vic)
    requester.goto(f"/generations/{gen}")
    requester.get_by_role("link", name="Read it and answer with a counter-notice").click()
    requester.wait_for_url(re.compile(rf".*/notices/{notice}/counter$"))
    check_page(requester, "counter")
    requester.get_by_label("Why the video should come back").fill("Nobody real is in it: it is a crowd of extras.")
    requester.get_by_label("I state in good faith").check()
    requester.get_by_role("button", name="File the counter-notice").click()
    requester.wait_for_url(re.compile(r".*done=countered"))
    assert requester.locator("#notice").get_attribute("data-state") == "countered"
    check_page(requester, "counter-filed")


def test_a_person_proves_their_face_live_and_the_video_comes_down_at_once(server, new_page) -> None:

    # an impostor enrolls the face the fake camera shows (live, in the browser) and releases a video of it
    impostor = server.account("imogen")
    page = new_page(server)
    sign_in(page, impostor)
    page.goto("/me/face")
    start_live_check(page, server)
    record_live_check(page)
    assert "done=enrolled" in page.url, page.locator("#live-status").inner_text()
    lk = page.locator("[data-likeness]").get_attribute("data-likeness")
    gen = _released(server, impostor, "a walk on the beach", [lk])

    filer = new_page(server)  # the face's real owner, no account
    filer.goto(f"/report?generation_id={gen}")
    _file(filer, "Myself", "This video shows my face; I never agreed to it.")
    filer.wait_for_url(re.compile(r".*/notices/ntc_[0-9a-f]+\?token=.*"))
    start_live_check(filer, server)
    check_page(filer, "notice-challenge")
    record_live_check(filer, "done=face")
    assert "done=face-found" in filer.url, filer.locator("#live-status").inner_text()
    assert filer.locator("#notice").get_attribute("data-state") == "taken_down"
    check_page(filer, "notice-face-found")
    assert server.api("GET", f"/v1/generations/{gen}", impostor).get_json()["taken_down"] is True

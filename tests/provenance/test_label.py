"""Visible label: drawn in the bottom-right corner only, on every frame, scaled to the frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from provenance.errors import WatermarkError
from provenance.label import add_visible_label


def changed_box(before: np.ndarray, after: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) bounds (exclusive) of the pixels that differ in any frame."""
    diff = np.any(before != after, axis=(0, -1)) if before.ndim == 4 else np.any(before != after, axis=-1)
    rows, cols = np.nonzero(diff)
    assert rows.size, "the label changed nothing"
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def textured(t: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("h, w", [(256, 256), (360, 640), (512, 512), (640, 360), (1080, 1920)])
def test_only_the_bottom_right_corner_changes(h: int, w: int) -> None:
    frames = textured(3, h, w)
    out = add_visible_label(frames)
    assert out.shape == frames.shape and out.dtype == np.uint8
    top, left, bottom, right = changed_box(frames, out)
    assert top >= h // 2 and left >= w // 3, "the badge strays out of its corner"
    assert bottom >= h - 0.06 * h and right >= w - 0.06 * w, "the badge is not in the corner"
    outside = np.ones((h, w), bool)
    outside[top:bottom, left:right] = False
    assert np.array_equal(out[:, outside], frames[:, outside])
    assert (bottom - top) * (right - left) <= 0.2 * h * w


def test_small_frames_get_a_small_badge_at_the_bottom() -> None:
    frames = textured(2, 64, 64)
    top, left, bottom, right = changed_box(frames, add_visible_label(frames))
    assert top >= 40 and bottom >= 60 and right >= 60


def test_every_frame_is_labelled_the_same_way() -> None:
    frames = np.full((5, 256, 256, 3), 90, np.uint8)
    out = add_visible_label(frames)
    assert all(np.array_equal(out[0], out[i]) for i in range(1, 5))
    assert not np.array_equal(out[0], frames[0])


def test_returns_a_new_array_and_accepts_one_frame() -> None:
    frames = textured(2, 128, 128)
    before = frames.copy()
    out = add_visible_label(frames)
    assert out is not frames and np.array_equal(frames, before)
    one = add_visible_label(frames[0])
    assert one.shape == frames[0].shape and np.array_equal(one, out[0])


def test_semi_opaque_badge_with_legible_text() -> None:
    white = np.full((1, 256, 256, 3), 255, np.uint8)
    black = np.zeros((1, 256, 256, 3), np.uint8)
    on_white, on_black = add_visible_label(white), add_visible_label(black)
    top, left, bottom, right = changed_box(white, on_white)
    box = on_white[0, top:bottom, left:right].astype(int)
    assert 60 < np.median(box) < 200, "the box should darken a white frame but let it show through"
    assert (box >= 240).any(), "white text should stand out on the darkened box"
    t2, l2, b2, r2 = changed_box(black, on_black)
    assert (on_black[0, t2:b2, l2:r2] >= 230).sum() >= 20, "the text should read on black too"


def test_badge_scales_with_the_frame_and_grows_with_a_sub_line() -> None:
    def area(h: int, w: int, sub: str | None = None) -> int:
        frames = np.full((1, h, w, 3), 128, np.uint8)
        top, left, bottom, right = changed_box(frames, add_visible_label(frames, sub=sub))
        return (bottom - top) * (right - left)

    assert area(512, 512) > 3 * area(256, 256)
    assert area(256, 256, sub="ConsentGate c0ffee00") > area(256, 256)


def test_custom_text_changes_the_badge() -> None:
    frames = np.full((1, 256, 256, 3), 128, np.uint8)
    assert not np.array_equal(add_visible_label(frames), add_visible_label(frames, "Made with AI"))


@pytest.mark.parametrize(
    "frames",
    [np.zeros((2, 64, 64, 3), np.float32), np.zeros((2, 64, 64, 4), np.uint8), np.zeros((0, 64, 64, 3), np.uint8),
     np.zeros((64, 64), np.uint8), [[0, 0, 0]]],
)
def test_bad_frames(frames: object) -> None:
    with pytest.raises(WatermarkError):
        add_visible_label(frames)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "   ", "x" * 81, None, 42])
def test_bad_text(text: object) -> None:
    with pytest.raises(WatermarkError):
        add_visible_label(np.zeros((1, 64, 64, 3), np.uint8), text)  # type: ignore[arg-type]


def test_frame_too_small_for_a_label() -> None:
    with pytest.raises(WatermarkError, match="too small"):
        add_visible_label(np.zeros((1, 12, 12, 3), np.uint8))


def test_credits_add_lines_below_and_are_never_dropped() -> None:
    frames = np.full((1, 256, 256, 3), 128, np.uint8)
    plain = changed_box(frames, add_visible_label(frames, sub="ConsentGate"))
    credited = changed_box(frames, add_visible_label(frames, sub="ConsentGate", credits=("Captain Comet (c) Studio",)))
    assert credited[0] < plain[0] and credited[2] == plain[2]  # taller, still on the bottom margin
    with pytest.raises(WatermarkError, match="credit"):
        add_visible_label(frames, credits=("",))
    many = tuple(f"Character {i} (c) Some Studio" for i in range(12))
    with pytest.raises(WatermarkError, match="too small"):  # refused, not labelled with credits missing
        add_visible_label(np.full((1, 96, 96, 3), 128, np.uint8), sub="ConsentGate", credits=many)


# --- the moving label (what releases carry) ----------------------------------------------------------------

from provenance.label import DWELL_S, LabelSpec, draw_label, label_schedule  # noqa: E402


def labelled(t: int, h: int, w: int, fps: float = 24.0, handle: str = "ada") -> tuple[np.ndarray, np.ndarray, list]:
    before = textured(t, h, w)
    frames = before.copy()
    return before, frames, draw_label(frames, fps, LabelSpec(handle))


@pytest.mark.parametrize("h, w", [(64, 64), (128, 128), (256, 256), (360, 640), (1080, 1920)])
def test_moving_label_changes_only_its_rectangles_in_place(h: int, w: int) -> None:
    before, frames, placements = labelled(60, h, w)
    assert placements[0].start == 0 and placements[-1].end == 60
    for p in placements:
        seg_before, seg = before[p.start:p.end], frames[p.start:p.end]
        inside = np.zeros((h, w), bool)
        inside[p.y:p.y + p.height, p.x:p.x + p.width] = True
        assert np.array_equal(seg[:, ~inside], seg_before[:, ~inside])
        assert np.all(np.any(seg[:, inside] != seg_before[:, inside], axis=(1, 2))), "a frame without the label"


def test_the_ai_mark_is_at_least_5_percent_of_the_shorter_side() -> None:
    for h, w in [(64, 64), (256, 256), (360, 640), (720, 1280)]:
        frames = np.full((2, h, w, 3), 128, np.uint8)
        (p, *_) = draw_label(frames, 1.0, LabelSpec("ada"))
        region = frames[0, p.y:p.y + p.height, p.x:p.x + p.width].min(axis=-1)
        # the mark is the near-white box starting the first line, with the letters "AI" knocked out of it
        count, labels, stats, _ = cv2.connectedComponentsWithStats((region > 220).astype(np.uint8))
        mark = min(range(1, count), key=lambda i: (stats[i, cv2.CC_STAT_LEFT] + stats[i, cv2.CC_STAT_TOP]))
        x, y, mw, mh = (int(v) for v in stats[mark, :4])
        middle = region[y:y + mh, x + mw // 4:x + 3 * mw // 4] < 160  # the letters' ink in the middle columns
        ink_rows = np.flatnonzero(middle.any(axis=1))
        ink = int(ink_rows.max() - ink_rows.min() + 1)
        assert ink >= 0.05 * min(h, w), (h, w, ink)
        assert p.text_px >= 0.05 * min(h, w)


def test_label_is_on_every_opening_frame_for_two_seconds_and_moves_afterwards() -> None:
    fps = 24.0
    before, frames, placements = labelled(int(5 * fps), 256, 256, fps)
    changed = np.any(frames != before, axis=(1, 2, 3))
    assert changed[: int(2 * fps)].all() and changed.all()
    positions = [p.position for p in placements]
    assert positions[:4] == ["bottom-right", "top-left", "top-right", "bottom-left"]
    assert all(p.end - p.start <= round(DWELL_S * fps) for p in placements)


@pytest.mark.parametrize("corner", ["bottom-right", "top-left", "top-right", "bottom-left"])
def test_cropping_any_corner_away_leaves_the_label_elsewhere(corner: str) -> None:
    h = w = 256
    before, frames, _ = labelled(48, h, w)
    keep = np.ones((h, w), bool)  # crop away the quarter of the picture in that corner
    rows = slice(h // 2, h) if corner.startswith("bottom") else slice(0, h // 2)
    cols = slice(w // 2, w) if corner.endswith("right") else slice(0, w // 2)
    keep[rows, cols] = False
    assert np.any(frames[:, keep] != before[:, keep])


def test_a_half_second_clip_still_shows_two_positions() -> None:
    schedule = label_schedule(12, 24.0)
    assert [s[2] for s in schedule] == ["bottom-right", "top-left"]
    assert label_schedule(1, 24.0) == [(0, 1, "bottom-right")]


def test_the_handle_is_in_the_label() -> None:
    a, b = np.full((2, 1, 256, 256, 3), 128, np.uint8)
    draw_label(a, 24.0, LabelSpec("ada"))
    draw_label(b, 24.0, LabelSpec("grace_hopper"))
    assert not np.array_equal(a, b)
    assert LabelSpec("ada").handle == "@ada"


def test_moving_label_rejections_change_nothing() -> None:
    frames = textured(2, 64, 64)
    before = frames.copy()
    with pytest.raises(WatermarkError, match="too small for a legible label"):
        draw_label(frames, 24.0, LabelSpec("h" * 40, credits=("A very long attribution (c) Studio",)))
    assert np.array_equal(frames, before)
    frames.flags.writeable = False
    with pytest.raises(WatermarkError, match="writeable"):
        draw_label(frames, 24.0, LabelSpec("ada"))
    with pytest.raises(WatermarkError, match="T, H, W, 3"):
        draw_label(before[0], 24.0, LabelSpec("ada"))
    with pytest.raises(WatermarkError, match="fps"):
        draw_label(before.copy(), 0.0, LabelSpec("ada"))
    with pytest.raises(WatermarkError, match="handle"):
        LabelSpec("")


def test_long_credits_wrap_and_shrink_but_the_ai_text_keeps_its_size() -> None:
    plain = draw_label(textured(2, 256, 256), 24.0, LabelSpec("bob"))
    credit = "Captain Comet and the Starlight Crew (c) Example Studio 2026"  # 60 characters, the longest allowed
    credited = draw_label(textured(2, 256, 256), 24.0, LabelSpec("bob", credits=(credit, "Robo Pup (c) Other")))
    assert credited[0].text_px == plain[0].text_px >= 0.05 * 256
    assert credited[0].height > plain[0].height and credited[0].width <= 0.7 * 256


# --- the Chinese label (GB 45438-2025: "人工智能生成") ------------------------------------------------------


def _best_overlap(text_mask: np.ndarray, glyph: np.ndarray) -> float:
    """The best intersection-over-union of ``glyph`` (a binary mask, trimmed to its ink) placed anywhere on
    ``text_mask``."""
    from numpy.lib.stride_tricks import sliding_window_view

    gh, gw = glyph.shape
    if gh > text_mask.shape[0] or gw > text_mask.shape[1]:
        return 0.0
    windows = sliding_window_view(text_mask, (gh, gw))
    inter = np.einsum("ijkl,kl->ij", windows.astype(np.int32), glyph.astype(np.int32))
    union = windows.sum(axis=(2, 3)) + glyph.sum() - inter
    return float((inter / np.maximum(union, 1)).max())


def _glyph_mask(font: object, ch: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    image = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(image).text((20, 20), ch, font=font, fill=255)
    mask = np.asarray(image) > 127
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def test_the_chinese_label_draws_its_glyphs_not_empty_boxes() -> None:
    """Each character of "人工智能生成" is found in the drawn label as the CJK font draws it, and the font's
    missing-glyph box is found nowhere; Pillow's own font, which has no CJK glyphs, is refused."""
    from PIL import ImageFont

    from provenance.label import LABEL_TEXT, find_cjk_font

    font_path = str(find_cjk_font())  # fails naming Debian's fonts-wqy-microhei when no CJK font is installed
    spec = LabelSpec("ada", language="zh")
    assert spec.text == LABEL_TEXT["zh"] == "人工智能生成" and spec.font == font_path
    frames = np.full((2, 512, 512, 3), 128, np.uint8)
    (p, *_) = draw_label(frames, 1.0, spec)
    assert p.text_px >= 0.05 * 512
    region = frames[0, p.y:p.y + p.height, p.x:p.x + p.width].min(axis=-1)
    text_mask = region > 155  # the white text over the dark box, halfway between the two (the "AI" mark is white too)
    sizes = [s for s in range(8, 120) if (lambda b: b[3] - b[1])(ImageFont.truetype(font_path, s).getbbox("AI"))
             == p.text_px]
    assert sizes, p.text_px
    font = ImageFont.truetype(font_path, sizes[0])
    found = {ch: _best_overlap(text_mask, _glyph_mask(font, ch)) for ch in "人工智能生成"}
    assert min(found.values()) > 0.95, found  # measured: 0.98 to 1.0 (edges round differently once blended)
    # the font's missing-glyph box is not what was drawn (measured: 0.72, it overlaps the "AI" mark's edges)
    tofu = _best_overlap(text_mask, _glyph_mask(font, "\U0010fffd"))
    assert tofu < 0.85, tofu


@pytest.mark.parametrize("kwargs, error", [
    ({"language": "fr"}, "label language must be one of"),
    ({"text": "人工智能生成"}, "has no glyph for '人工智能生成'"),  # English: Pillow's own font, no CJK glyphs
    ({"language": "zh", "font": "/nonexistent/font.ttf"}, "cannot be read as a TrueType/OpenType font"),
    ({"language": "zh", "font": __file__}, "cannot be read as a TrueType/OpenType font"),
])
def test_a_label_that_would_draw_empty_boxes_is_refused(kwargs: dict, error: str) -> None:
    with pytest.raises(WatermarkError, match=error):
        LabelSpec("ada", **kwargs)


def test_no_cjk_font_installed_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import provenance.label as label

    monkeypatch.setattr(label, "CJK_FONT_CANDIDATES", ("/nonexistent/cjk.ttc",))
    with pytest.raises(WatermarkError, match="fonts-wqy-microhei"):
        LabelSpec("ada", language="zh")

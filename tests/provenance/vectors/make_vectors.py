"""Write the frozen vectors in this folder (see README.md). Run once per format version, never to "fix" a
failing test: a vector that no longer reads back means the format changed, and released videos with it.

    python tests/provenance/vectors/make_vectors.py          # refuses to overwrite an existing vector
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parents[2]) not in sys.path:  # the checkout, when run as a script
    sys.path.insert(0, str(HERE.parents[2]))

from media.video import Clip, write_video  # noqa: E402
from provenance.fingerprint import fingerprint_video  # noqa: E402
from provenance.watermark import WatermarkKey, embed  # noqa: E402

#: Public test constants: the key is for these vectors only and marks nothing real.
KEY = WatermarkKey(b"consentgate-frozen-vector-key-v2")
PAYLOAD = bytes.fromhex("0123456789abcdef")
FRAMES = 6
FPS = 24.0
CRF = 18  # what the gate encodes released videos with


def scene(size: int) -> np.ndarray:
    """``FRAMES`` frames of ``size`` x ``size``: colour gradients and two flat shapes drifting (deterministic)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((FRAMES, size, size, 3), np.uint8)
    for t in range(FRAMES):
        f = np.stack([60 + 150 * xx, 40 + 120 * yy, 180 - 100 * xx * yy], axis=-1)
        f[(xx - 0.3 - 0.01 * t) ** 2 + (yy - 0.35) ** 2 < 0.02] = (220, 60, 40)
        f[(np.abs(xx - 0.65) < 0.12) & (np.abs(yy - 0.7 + 0.01 * t) < 0.08)] = (30, 90, 200)
        out[t] = np.clip(f, 0, 255)
    return out


def main() -> int:
    jobs = {
        # frames under 128 px use 2-pixel cells (a 64 px tile); 128 px and up use 4-pixel cells (a 128 px tile)
        HERE / "watermark-v2-64px.mp4": 64,
        HERE / "watermark-v2-128px.mp4": 128,
    }
    for path, size in jobs.items():
        if path.exists():
            print(f"{path.name} exists: left as it is", file=sys.stderr)
            continue
        write_video(path, Clip(embed(scene(size), PAYLOAD, KEY), fps=FPS), crf=CRF)
        print(f"wrote {path.name} ({path.stat().st_size} bytes)")
    fp = HERE / "fingerprint-v1.bin"
    if fp.exists():
        print(f"{fp.name} exists: left as it is", file=sys.stderr)
    else:
        fp.write_bytes(fingerprint_video(HERE / "watermark-v2-128px.mp4", query_views=False).to_bytes())
        print(f"wrote {fp.name} ({fp.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Run every benchmark module (or the ones named): ``python -m bench [watermark] [faces]``."""

from __future__ import annotations

import importlib
import sys

ALL = ("watermark", "faces")


def main(argv: list[str]) -> int:
    names = argv or list(ALL)
    for name in names:
        if name not in ALL:
            print(f"bench: unknown benchmark {name!r}; choose from {', '.join(ALL)}", file=sys.stderr)
            return 2
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

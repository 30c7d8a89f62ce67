"""Run benchmarks: ``python -m bench`` runs them all; ``python -m bench NAME [flags]`` runs one with its flags
(``python -m bench watermark --quick``, ``python -m bench faces --only search``, ``python -m bench names``,
``python -m bench selfie --quick``)."""

from __future__ import annotations

import importlib
import sys

ALL = ("decisions", "seal", "verify", "library", "watermark", "faces", "insightface", "liveness", "selfie", "limits",
       "names", "restrictions", "scale", "label", "recorder")


def main(argv: list[str]) -> int:
    if argv and argv[0] not in ALL:
        print(f"bench: unknown benchmark {argv[0]!r}; choose from {', '.join(ALL)}", file=sys.stderr)
        return 2
    runs = [(argv[0], argv[1:])] if argv else [(name, []) for name in ALL]
    for name, flags in runs:
        print(f"\n=== bench.{name} {' '.join(flags)} ===", flush=True)
        importlib.import_module(f"bench.{name}").main(flags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

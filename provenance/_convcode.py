"""The watermark's error-correcting code: a rate-1/3 convolutional code, constraint length 9, generators
557/663/711 (octal; free distance 18), zero-terminated, with a soft-decision Viterbi decoder.

``conv_encode`` maps n message bits (0/1) to ``coded_length(n)`` = 3 * (n + 8) coded bits; ``viterbi``
takes one soft value per coded bit (positive: 1 is likelier) and returns the n most likely message bits.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_MEMORY = 8  # constraint length 9
_GENERATORS = (0o557, 0o663, 0o711)  # rate 1/3, free distance 18


def coded_length(message_bits: int) -> int:
    """Coded bits for ``message_bits`` message bits (the code is zero-terminated)."""
    return len(_GENERATORS) * (message_bits + _MEMORY)


@lru_cache(maxsize=1)
def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """For each next state: its two predecessor states and the +-1 outputs of those transitions."""
    nxt = np.arange(1 << _MEMORY)
    prev = np.stack([nxt >> 1, (nxt >> 1) | (1 << (_MEMORY - 1))], axis=1)
    reg = (prev << 1) | (nxt & 1)[:, None]
    out = np.stack([_parity(reg & g) for g in _GENERATORS], axis=-1)
    return prev, out.astype(np.float64) * 2 - 1


def _parity(x: np.ndarray) -> np.ndarray:
    p = np.zeros_like(x)
    while np.any(x):
        p ^= x & 1
        x = x >> 1
    return p


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """The coded bits (0/1, uint8) of message bits (0/1), followed by the 8 zero tail bits' output."""
    state, out = 0, list[int]()
    for u in [int(b) for b in bits] + [0] * _MEMORY:
        reg = (state << 1) | u
        out.extend(bin(reg & g).count("1") & 1 for g in _GENERATORS)
        state = reg & ((1 << _MEMORY) - 1)
    return np.array(out, np.uint8)


def viterbi(soft: np.ndarray) -> np.ndarray:
    """Soft-decision Viterbi (maximum correlation), start and end in state 0."""
    prev, out = _trellis()
    steps = soft.reshape(-1, len(_GENERATORS))
    metric = np.full(1 << _MEMORY, -np.inf)
    metric[0] = 0.0
    rows = np.arange(1 << _MEMORY)
    choices = np.empty((len(steps), 1 << _MEMORY), np.intp)
    for t, s in enumerate(steps):
        cand = metric[prev] + out @ s
        choices[t] = np.argmax(cand, axis=1)
        metric = cand[rows, choices[t]]
    state, bits = 0, np.empty(len(steps), np.uint8)
    for t in range(len(steps) - 1, -1, -1):
        bits[t] = state & 1
        state = int(prev[state, choices[t, state]])
    return bits[: len(steps) - _MEMORY]

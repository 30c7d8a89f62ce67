"""HTTP API v1, the transparency log (public: anyone may audit it): the signed tree head, an entry with its
inclusion proof, and consistency proofs between two tree sizes (RFC 9162)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from governance.authz import Action
from governance.errors import InvalidInput
from governance.log.services import translog
from governance.web import db, guard, runtime

bp = Blueprint("log", __name__)  # nested in the v1 blueprint (governance.app): /v1/...


@bp.get("/log")
@guard(Action.LOG_HEAD)
def log_head() -> Response:
    """The signed tree head: size, Merkle root, time, and the signature under the C2PA signer's chain."""
    return jsonify(runtime().signed_log_head(db()).to_dict())


@bp.get("/log/entries/<int:index>")
@guard(Action.LOG_ENTRY)
def log_entry(index: int) -> Response:
    """The entry, its leaf hash and its inclusion proof in the tree of ``tree_size`` entries (default: all)."""
    return jsonify(translog.inclusion(db(), index, _int_arg("tree_size")))


@bp.get("/log/consistency")
@guard(Action.LOG_CONSISTENCY)
def log_consistency() -> Response:
    """The proof that the first ``old_size`` entries are a prefix of the tree of ``tree_size`` (default: all)."""
    old_size = _int_arg("old_size")
    if old_size is None:
        raise InvalidInput("send old_size: the tree size you saw before")
    return jsonify(translog.consistency(db(), old_size, _int_arg("tree_size")))


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 15:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}")
    return int(raw)

"""HTTP API v1, the transparency log (public: anyone may audit it): the signed tree head, an entry with its
inclusion proof, and consistency proofs between two tree sizes (RFC 9162)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from governance.authz import Action
from governance.errors import InvalidInput
from governance.log import schemas as s
from governance.log.services import translog
from governance.openapi import operation
from governance.web import db, guard, runtime
from provenance import keys as provenance_keys

bp = Blueprint("log", __name__)  # nested in the v1 blueprint (governance.app): /v1/...


TRUST_ANCHOR_PATH = "/v1/log/trust-anchor"


@bp.get("/log")
@guard(Action.LOG_HEAD)
@operation(ok={200: s.SignedHeadOut}, tags=["transparency log"],
           headers={200: {"Link": '</v1/log/trust-anchor>; rel="trust-anchor": the root certificate to check under'}})
def log_head() -> Response:
    """The signed tree head: size, Merkle root, time, and the signature under the C2PA signer's chain. The body
    is the head exactly as signed and kept (clients store and compare heads); the root certificate the chain
    must lead to is linked from the ``Link`` header (``rel="trust-anchor"``), and served by :func:`log_trust_anchor`
    with its SHA-256 fingerprint (of the DER certificate, as ``openssl x509 -fingerprint -sha256`` prints it)."""
    resp = jsonify(runtime().heads.signed(db()).to_dict())
    resp.headers["Link"] = f'<{TRUST_ANCHOR_PATH}>; rel="trust-anchor"; type="application/x-pem-file"'
    return resp


@bp.get("/log/trust-anchor")
@guard(Action.LOG_TRUST_ANCHOR)
@operation(media={200: "application/x-pem-file"}, tags=["transparency log"],
           headers={200: {"Content-Disposition": 'inline; filename="root-ca.pem"',
                          "X-Certificate-SHA256": "the certificate's SHA-256 fingerprint (of its DER), as "
                                                  "openssl x509 -fingerprint -sha256 prints it"}})
def log_trust_anchor() -> Response:
    """The root certificate (PEM) the signed tree head's chain, and every C2PA manifest's, is issued under: the
    trust anchor of ``SignedTreeHead.verify`` and ``consentgate log verify-head``."""
    pem = runtime().keys.trust_anchor_pem
    resp = Response(pem, mimetype="application/x-pem-file")
    resp.headers["Content-Disposition"] = 'inline; filename="root-ca.pem"'
    resp.headers["X-Certificate-SHA256"] = fingerprint(pem)
    return resp


@bp.get("/log/entries/<int:index>")
@guard(Action.LOG_ENTRY)
@operation(ok={200: s.InclusionOut}, query=s.InclusionQuery, errors=[422], tags=["transparency log"])
def log_entry(index: int) -> Response:
    """The entry, its leaf hash and its inclusion proof in the tree of ``tree_size`` entries (default: all)."""
    return jsonify(translog.inclusion(db(), index, _int_arg("tree_size")))


@bp.get("/log/consistency")
@guard(Action.LOG_CONSISTENCY)
@operation(ok={200: s.ConsistencyOut}, query=s.ConsistencyQuery, errors=[422], tags=["transparency log"])
def log_consistency() -> Response:
    """The proof that the first ``old_size`` entries are a prefix of the tree of ``tree_size`` (default: all)."""
    old_size = _int_arg("old_size")
    if old_size is None:
        raise InvalidInput("send old_size: the tree size you saw before")
    return jsonify(translog.consistency(db(), old_size, _int_arg("tree_size")))


def fingerprint(pem: bytes) -> str:
    """The SHA-256 fingerprint of a PEM certificate: hex of the hash of its DER encoding, lower case."""
    return provenance_keys.certificate_fingerprint(pem)


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}")
    return int(raw)

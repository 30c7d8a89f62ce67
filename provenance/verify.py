"""Read and validate the C2PA manifest of any uploaded file (c2pa-python), offline.

:func:`read_c2pa` never raises for what it finds *in* a file: a missing manifest is ``"absent"``, a
tampered one ``"Invalid"`` with the failure codes c2pa reports. It raises :class:`VerificationError`
only when the input itself cannot be read (empty, not a supported media type, a broken container)::

    >>> from pathlib import Path
    >>> from provenance.verify import read_c2pa
    >>> data = Path("clip.mp4").read_bytes()                                  # doctest: +SKIP
    >>> report = read_c2pa(data, trust_anchors_pem=material.root_pem)         # doctest: +SKIP
    >>> report.state, report.digital_source_type                              # doctest: +SKIP
    ('Trusted', 'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia')

States, as c2pa reports them: ``Trusted`` (valid and the signer chains to a given trust anchor),
``Valid`` (intact and correctly signed, signer not trusted here: failures then hold
``signingCredential.untrusted``), ``Invalid`` (something does not match: content, assertions or
signature). Two more are ours: ``remote`` (the file points to a manifest kept at a URL, given in
``remote_url``; it is never fetched, so nothing about it is known) and ``absent``. A manifest that is
there but that the reader cannot process (an unknown algorithm, a pre-release or damaged store) is
``Invalid`` with the failure ``manifest.unreadable``, the reader's error kind in ``reader_error`` and its
message in ``detail``. Remote manifests and OCSP are never fetched.

The fields other than ``state`` and ``failures`` are what the manifest *claims*; they are only worth
believing when the state is ``Trusted`` (or ``Valid`` and you trust the issuer by other means).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import c2pa
from cryptography import x509

from provenance.errors import VerificationError, one_line
from provenance.labels import DISCLOSURE_LABEL, GENERATOR_LABEL, GOVERNANCE_LABEL, mime_for

__all__ = ["REMOTE_MANIFEST", "UNREADABLE_MANIFEST", "C2paReport", "C2paState", "mime_for", "read_c2pa"]

C2paState = Literal["Trusted", "Valid", "Invalid", "remote", "absent"]

UNREADABLE_MANIFEST = "manifest.unreadable"
"""Our failure code (not a C2PA status code) for a manifest that is present but cannot be decoded."""
REMOTE_MANIFEST = "manifest.inaccessible"
"""The C2PA status code for a manifest that could not be retrieved: a remote one is never fetched here."""

# c2pa-python's errors that say the *input* could not be parsed (not its manifest): the message of its
# "Other" kind starts so, and these kinds are about files and handles, never about a manifest's content
_INPUT_ERRORS = ("asset could not be parsed",)
_INPUT_KINDS = ("Io", "FileNotFound", "NotSupported", "Encoding", "UntrackedPointer", "WrongPointerType")
_URL = re.compile(r"https?://[^\s'\"<>]+")

_STATES = ("Trusted", "Valid", "Invalid")


@dataclass(frozen=True)
class C2paReport:
    """What the active manifest of a file says, and whether c2pa believes it.

    ``failures`` lists failure codes from the active manifest first, then from its ingredients
    (each code once). ``generator`` is ConsentGate's generator assertion and ``software_agent`` the
    ``name/version`` of the software agent of the creating action, when the manifest has them;
    ``detail`` is a one-line explanation for the ``manifest.unreadable`` failure, ``reader_error`` the
    kind of error c2pa-python raised for it (``"Other"``, ``"Decoding"``...), ``remote_url`` where a
    ``remote`` manifest lives.
    """

    state: C2paState
    failures: tuple[str, ...]
    title: str | None
    claim_generator: str | None
    issuer: str | None
    digital_source_type: str | None
    actions: tuple[str, ...]
    governance: Mapping[str, Any] | None
    ingredients: tuple[str, ...]
    generator: Mapping[str, Any] | None = None
    software_agent: str | None = None
    detail: str | None = None
    reader_error: str | None = None
    remote_url: str | None = None
    manifest_id: str | None = None
    disclosure: Mapping[str, Any] | None = None
    soft_bindings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.state not in (*_STATES, "remote", "absent"):
            raise VerificationError(
                f"state must be one of Trusted, Valid, Invalid, remote, absent; got {self.state!r}"
            )

    @classmethod
    def absent(cls, *failures: str) -> C2paReport:
        """The report for a file without a (readable, embedded) manifest."""
        return cls("absent", tuple(failures), None, None, None, None, (), None, ())

    @classmethod
    def unreadable(cls, reader_error: str, detail: str) -> C2paReport:
        """The report for a manifest that is there but that c2pa cannot process."""
        return cls("Invalid", (UNREADABLE_MANIFEST,), None, None, None, None, (), None, (), detail=detail,
                   reader_error=reader_error)

    @classmethod
    def remote(cls, url: str | None, detail: str) -> C2paReport:
        """The report for a file whose manifest is kept at ``url`` (not fetched)."""
        return cls("remote", (REMOTE_MANIFEST,), None, None, None, None, (), None, (), detail=detail,
                   reader_error="Remote", remote_url=url)

    @property
    def present(self) -> bool:
        return self.state != "absent"

    @property
    def trusted(self) -> bool:
        return self.state == "Trusted"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists, mappings plain dicts)."""
        return {
            "state": self.state,
            "failures": list(self.failures),
            "title": self.title,
            "claim_generator": self.claim_generator,
            "issuer": self.issuer,
            "digital_source_type": self.digital_source_type,
            "actions": list(self.actions),
            "governance": _plain(self.governance),
            "ingredients": list(self.ingredients),
            "generator": _plain(self.generator),
            "software_agent": self.software_agent,
            "detail": self.detail,
            "reader_error": self.reader_error,
            "remote_url": self.remote_url,
            "manifest_id": self.manifest_id,
            "disclosure": _plain(self.disclosure),
            "soft_bindings": list(self.soft_bindings),
        }


def read_c2pa(data: bytes, *, trust_anchors_pem: bytes | None = None, mime: str | None = None) -> C2paReport:
    """Validate the C2PA manifest embedded in ``data`` and summarise it.

    ``trust_anchors_pem`` (one or more PEM roots) turns a valid signature by a chain under one of them
    into ``Trusted``. ``mime`` overrides :func:`mime_for`. Nothing is fetched over the network.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise VerificationError(f"expected the file's bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise VerificationError("expected the bytes of an image or video, got an empty input")
    if mime is None:
        mime = mime_for(data[:64])
    elif mime not in c2pa.Reader.get_supported_mime_types():
        raise VerificationError(
            f"expected a MIME type c2pa can read (e.g. video/mp4, image/jpeg), got {mime!r}"
        )
    anchors = _anchors(trust_anchors_pem)

    settings_dict: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if anchors is not None:
        settings_dict["trust"] = {"user_anchors": anchors}
    try:
        with c2pa.Settings.from_dict(settings_dict) as settings, c2pa.Context(settings=settings) as context:
            with c2pa.Reader(mime, io.BytesIO(data), None, context) as reader:
                store = reader.json()
    except c2pa.C2paError.ManifestNotFound:
        return C2paReport.absent()
    except c2pa.C2paError as e:
        kind, message = _reader_error(e)
        if kind in _INPUT_KINDS or message.startswith(_INPUT_ERRORS):
            raise VerificationError(f"could not read the input as {mime}: {one_line(e)}") from e
        if kind in ("Remote", "RemoteManifest"):
            # c2pa-python 0.38 raises its base class here, the message "Remote: ... from url <url>"
            urls = _URL.findall(message)
            return C2paReport.remote(urls[-1].rstrip(".,;)") if urls else None, one_line(e))
        # A manifest is there but cannot be processed (damaged, unknown algorithm, pre-release content):
        # a finding about the file (like tampering), not an unreadable upload.
        return C2paReport.unreadable(kind, one_line(e))

    return _report(store)


# --------------------------------------------------------------------------------------------------


def _report(store_json: str) -> C2paReport:
    try:
        store = json.loads(store_json)
    except ValueError as e:  # pragma: no cover - c2pa always returns JSON
        raise VerificationError(f"c2pa returned a manifest store that is not JSON: {e}") from e
    state = store.get("validation_state")
    if state not in _STATES:
        # Older stores have no state: no failure means valid.
        state = "Invalid" if store.get("validation_status") else "Valid"
    active_label = store.get("active_manifest")
    manifest: Mapping[str, Any] = store.get("manifests", {}).get(active_label) or {}
    assertions = [a for a in manifest.get("assertions", []) if isinstance(a, Mapping)]

    actions: list[Mapping[str, Any]] = []
    for a in assertions:
        if _label_is(a.get("label"), "c2pa.actions") or _label_is(a.get("label"), "c2pa.actions.v2"):
            actions.extend(x for x in (a.get("data") or {}).get("actions", []) if isinstance(x, Mapping))
    created = next((x for x in actions if x.get("action") in ("c2pa.created", "c2pa.opened")), None)
    with_source = created if created and created.get("digitalSourceType") else next(
        (x for x in actions if x.get("digitalSourceType")), None
    )

    signature = manifest.get("signature_info") or {}
    return C2paReport(
        state=state,
        failures=_failure_codes(store),
        title=manifest.get("title"),
        claim_generator=_claim_generator(manifest),
        issuer=signature.get("issuer") or signature.get("common_name"),
        digital_source_type=with_source.get("digitalSourceType") if with_source else None,
        actions=tuple(str(x.get("action")) for x in actions),
        governance=_assertion_data(assertions, GOVERNANCE_LABEL),
        ingredients=tuple(
            str(i.get("title") or i.get("label") or "")
            for i in manifest.get("ingredients", [])
            if isinstance(i, Mapping)
        ),
        generator=_assertion_data(assertions, GENERATOR_LABEL),
        software_agent=_agent_name(created.get("softwareAgent")) if created else None,
        manifest_id=str(active_label) if active_label else None,
        disclosure=_assertion_data(assertions, DISCLOSURE_LABEL),
        soft_bindings=tuple(
            str((a.get("data") or {}).get("alg"))
            for a in assertions
            if _label_is(a.get("label"), "c2pa.soft-binding") and isinstance(a.get("data"), Mapping)
        ),
    )


def _failure_codes(store: Mapping[str, Any]) -> tuple[str, ...]:
    results = store.get("validation_results")
    entries: list[Any] = []
    if isinstance(results, Mapping):
        entries.extend((results.get("activeManifest") or {}).get("failure", []))
        for delta in results.get("ingredientDeltas") or []:
            entries.extend(((delta or {}).get("validationDeltas") or {}).get("failure", []))
    else:
        entries.extend(store.get("validation_status") or [])
    codes = (str(e["code"]) for e in entries if isinstance(e, Mapping) and e.get("code"))
    return tuple(dict.fromkeys(codes))


def _claim_generator(manifest: Mapping[str, Any]) -> str | None:
    if manifest.get("claim_generator"):
        return str(manifest["claim_generator"])
    infos = [i for i in manifest.get("claim_generator_info", []) if isinstance(i, Mapping) and i.get("name")]
    return _agent_name(infos[0]) if infos else None


def _agent_name(agent: Any) -> str | None:
    if isinstance(agent, str):
        return agent
    if isinstance(agent, Mapping) and agent.get("name"):
        return f"{agent['name']}/{agent['version']}" if agent.get("version") else str(agent["name"])
    return None


def _label_is(label: Any, base: str) -> bool:
    # c2pa numbers repeated labels as "label__1", "label__2"...
    return isinstance(label, str) and (label == base or label.startswith(f"{base}__"))


def _assertion_data(assertions: Iterable[Mapping[str, Any]], label: str) -> Mapping[str, Any] | None:
    for a in assertions:
        if _label_is(a.get("label"), label) and isinstance(a.get("data"), Mapping):
            return dict(a["data"])
    return None


def _anchors(pem: bytes | None) -> str | None:
    if pem is None:
        return None
    try:
        text = bytes(pem).decode("ascii")
    except (UnicodeDecodeError, TypeError) as e:
        raise VerificationError(
            f"trust_anchors_pem must be ASCII PEM bytes, got undecodable data: {e}"
        ) from e
    try:
        x509.load_pem_x509_certificates(text.encode("ascii"))
    except ValueError as e:
        raise VerificationError(
            f"trust_anchors_pem must hold PEM certificates, could not parse them: {e}"
        ) from e
    return text


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _reader_error(e: BaseException) -> tuple[str, str]:
    """(kind, message) of a c2pa-python error: its messages read ``"Kind: message"``."""
    text = one_line(e)
    kind, sep, rest = text.partition(": ")
    if sep and kind.isidentifier():
        return kind, rest
    return type(e).__name__.removeprefix("_C2pa"), text

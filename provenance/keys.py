"""Signer keys and certificates for C2PA: a development CA on disk, or a callback for a KMS/HSM.

The embedded setup creates a three-level development CA (root -> intermediate -> leaf, EC P-256) the
first time it runs and loads it afterwards. Production keeps the same files layout but puts a
certificate from a C2PA-trusted CA in it, or keeps the key in a KMS/HSM and signs through a callback::

    >>> from pathlib import Path
    >>> from provenance.keys import ensure_dev_ca, callback_signer_from_key
    >>> material = ensure_dev_ca(Path("/tmp/consentgate-keys"))   # creates once, then loads
    >>> material.alg
    'es256'
    >>> sign = callback_signer_from_key(material)                  # what a KMS/HSM callback looks like
    >>> len(sign(b"bytes to sign"))                                # ES256 signature as raw r||s
    64

Files in the directory (keys are written with mode 0600, every file atomically):

- ``signer-chain.pem``: the leaf certificate followed by the intermediate (what c2pa signs with);
- ``signer-key.pem``: the leaf's private key (PKCS#8, unencrypted: protect the directory);
- ``root-ca.pem``: the trust anchor a verifier needs to report ``Trusted``.

The CA private keys are used once to issue the chain and are never written: the development CA cannot
issue anything else. Delete the directory to start over with a fresh CA.

With the key in a KMS or HSM, the directory holds only the chain and the root:
``load_signer_material(directory, with_key=False)`` loads them, :func:`import_signer_factory` finds the
operator's callback factory (``"package.module:factory"``, called with the material, returning a
:data:`SignFn`), and :func:`check_sign_fn` proves, before anything is sealed, that the callback's
signatures verify under the leaf certificate (a KMS key and a certificate that are not a pair would
otherwise produce manifests every verifier rejects).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from provenance.errors import SigningError

__all__ = [
    "CHAIN_FILE",
    "KEY_FILE",
    "ROOT_FILE",
    "SignFn",
    "SignerMaterial",
    "callback_signer_from_key",
    "certificate_fingerprint",
    "check_sign_fn",
    "ensure_dev_ca",
    "import_signer_factory",
    "load_signer_material",
    "verify_chain",
    "verify_signature",
]

CHAIN_FILE = "signer-chain.pem"
KEY_FILE = "signer-key.pem"
ROOT_FILE = "root-ca.pem"
_LOCK_FILE = ".signer.lock"

SignFn = Callable[[bytes], bytes]
"""Signs the bytes c2pa hands over and returns the signature (what a KMS/HSM client implements)."""

_ALGS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
_DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
_PEM_KEY = b"PRIVATE KEY-----"

# Validity of the development CA. The leaf starts a day early to tolerate clock skew between hosts.
_ROOT_DAYS = 3650
_INTERMEDIATE_DAYS = 1825
_LEAF_DAYS = 730
_BACKDATE = dt.timedelta(days=1)


@dataclass(frozen=True, repr=False)
class SignerMaterial:
    """A signing certificate chain, its private key and the root that anchors it.

    ``cert_chain_pem`` holds the leaf then its intermediates and never the root (c2pa embeds exactly
    this chain in the manifest). ``private_key_pem`` is ``None`` when the key lives in a KMS or HSM and
    signing goes through a callback. ``repr`` never shows the key.
    """

    cert_chain_pem: bytes
    private_key_pem: bytes | None
    root_pem: bytes
    alg: str = "es256"

    def __post_init__(self) -> None:
        if self.alg not in _ALGS:
            raise SigningError(f"signing algorithm must be one of {', '.join(_ALGS)}, got {self.alg!r}")
        if _PEM_CERT not in self.cert_chain_pem:
            raise SigningError("cert_chain_pem must hold PEM certificates (leaf first), got no certificate")
        if self.private_key_pem is not None and _PEM_KEY not in self.private_key_pem:
            raise SigningError("private_key_pem must hold a PEM private key, got something else")
        if _PEM_CERT not in self.root_pem:
            raise SigningError("root_pem must hold a PEM certificate (the trust anchor), got no certificate")

    def __repr__(self) -> str:
        key = "<hidden>" if self.private_key_pem is not None else "None (signs through a callback)"
        return f"SignerMaterial(subject={self.subject!r}, alg={self.alg!r}, private_key={key})"

    @property
    def leaf(self) -> x509.Certificate:
        """The signing certificate (first in the chain)."""
        return x509.load_pem_x509_certificate(self.cert_chain_pem)

    @property
    def subject(self) -> str:
        """The leaf certificate's subject, RFC 4514 style."""
        return self.leaf.subject.rfc4514_string()


def ensure_dev_ca(directory: Path, organisation: str = "ConsentGate development CA") -> SignerMaterial:
    """Load the signer in ``directory``, creating a development CA there on first use.

    Idempotent and safe against concurrent first calls (an exclusive lock file guards creation).
    A directory holding only some of the files is refused rather than overwritten.
    """
    directory = Path(directory)
    if not organisation.strip():
        raise SigningError("organisation must be a non-empty name for the development CA")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise SigningError(f"cannot create the key directory {directory}: {e}") from e
    with _locked(directory):
        present = [name for name in (CHAIN_FILE, KEY_FILE, ROOT_FILE) if (directory / name).exists()]
        if not present:
            _create_dev_ca(directory, organisation)
        elif len(present) < 3:
            raise SigningError(
                f"expected all of {CHAIN_FILE}, {KEY_FILE}, {ROOT_FILE} in {directory} or none, "
                f"found only {', '.join(present)}: restore the missing files or delete the directory"
            )
    return load_signer_material(directory)


def load_signer_material(directory: Path, *, with_key: bool = True) -> SignerMaterial:
    """Load and check the signer files in ``directory`` (see the module docstring for the layout).

    Checks that every file parses, that the key matches the leaf certificate, that the chain is not
    expired and that it links up to the root. Raises :class:`SigningError` saying which file is wrong.
    ``with_key=False`` (the key is in a KMS or HSM) loads only the chain and the root; a key file
    there is not read.
    """
    directory = Path(directory)
    blobs: dict[str, bytes] = {}
    for name in (CHAIN_FILE, KEY_FILE, ROOT_FILE) if with_key else (CHAIN_FILE, ROOT_FILE):
        path = directory / name
        try:
            blobs[name] = path.read_bytes()
        except FileNotFoundError as e:
            raise SigningError(
                f"signer file {path} is missing: run ensure_dev_ca or install a certificate there"
                if with_key else f"signer file {path} is missing: install the KMS key's certificate chain "
                f"({CHAIN_FILE}) and its root ({ROOT_FILE}) there"
            ) from e
        except OSError as e:
            raise SigningError(f"cannot read signer file {path}: {e}") from e

    try:
        chain = x509.load_pem_x509_certificates(blobs[CHAIN_FILE])
    except ValueError as e:
        raise SigningError(
            f"{directory / CHAIN_FILE} must hold PEM certificates, could not parse it: {e}"
        ) from e
    try:
        root = x509.load_pem_x509_certificate(blobs[ROOT_FILE])
    except ValueError as e:
        raise SigningError(
            f"{directory / ROOT_FILE} must hold one PEM certificate, could not parse it: {e}"
        ) from e
    leaf = chain[0]
    if with_key:
        try:
            key = serialization.load_pem_private_key(blobs[KEY_FILE], password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise SigningError(
                f"{directory / KEY_FILE} must hold an unencrypted PEM private key, could not load it: {e}"
            ) from e
        alg = _alg_for_key(key)
        if leaf.public_key() != key.public_key():
            raise SigningError(
                f"{directory / KEY_FILE} does not match the leaf certificate in {directory / CHAIN_FILE}"
            )
    else:
        alg = _alg_for_key(leaf.public_key())
    now = dt.datetime.now(dt.UTC)
    for cert in (*chain, root):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SigningError(
                f"certificate {cert.subject.rfc4514_string()} is valid from "
                f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}, not now: "
                f"replace it (or delete {directory} for a new dev CA)"
            )
    try:
        _check_links(chain, root)
    except SigningError as e:
        raise SigningError(f"{e}: {CHAIN_FILE} must run leaf -> intermediates and end under {ROOT_FILE}") from e
    return SignerMaterial(
        cert_chain_pem=blobs[CHAIN_FILE],
        private_key_pem=blobs.get(KEY_FILE),
        root_pem=blobs[ROOT_FILE],
        alg=alg,
    )


def callback_signer_from_key(material: SignerMaterial) -> SignFn:
    """A signing callback backed by the in-memory key: the shape a KMS/HSM callback takes.

    ES* signatures come back as raw ``r || s`` (the COSE form), PS* as RSA-PSS with a digest-sized
    salt, Ed25519 as the plain 64-byte signature.
    """
    if material.private_key_pem is None:
        raise SigningError("this signer material holds no private key (it signs through a KMS/HSM callback)")
    try:
        key = serialization.load_pem_private_key(material.private_key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise SigningError(f"the signer's private key could not be loaded: {e}") from e
    alg = material.alg
    if _alg_for_key(key)[:2] != alg[:2]:
        raise SigningError(f"the private key does not suit algorithm {alg!r}")
    digests: dict[str, hashes.HashAlgorithm] = {
        "256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()
    }
    digest = digests.get(alg[-3:], hashes.SHA256())

    if isinstance(key, ec.EllipticCurvePrivateKey):
        ec_key = key
        size = (ec_key.curve.key_size + 7) // 8

        def sign_ec(data: bytes) -> bytes:
            r, s = decode_dss_signature(ec_key.sign(data, ec.ECDSA(digest)))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")

        return sign_ec
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_key = key

        def sign_rsa(data: bytes) -> bytes:
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            return rsa_key.sign(data, pss, digest)

        return sign_rsa
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign
    raise SigningError(f"unsupported private key type {type(key).__name__}")  # pragma: no cover


_PROBE = b"ConsentGate signer check: a KMS key and its certificate must be a pair"


def check_sign_fn(material: SignerMaterial, sign_fn: SignFn) -> None:
    """Sign a probe with ``sign_fn`` and verify it under ``material``'s leaf certificate, as a C2PA
    verifier will; raise :class:`SigningError` saying what is wrong (the callback failed, returned
    something other than bytes, or signs with a key that is not the certificate's)."""
    try:
        signature = sign_fn(_PROBE)
    except Exception as e:  # the operator's KMS client: any failure is a configuration error here
        raise SigningError(f"the signing callback failed on a test signature: {type(e).__name__}: {e}") from e
    if not isinstance(signature, bytes | bytearray):
        raise SigningError(f"the signing callback must return bytes, got {type(signature).__name__}")
    try:
        verify_signature(material.cert_chain_pem, material.alg, _PROBE, bytes(signature))
    except SigningError as e:
        raise SigningError(f"{e}: the KMS key and the certificate in {CHAIN_FILE} must be a pair") from e


def verify_signature(cert_chain_pem: bytes, alg: str, data: bytes, signature: bytes) -> None:
    """Check ``signature`` (in the form a :data:`SignFn` returns) over ``data`` under the first
    certificate of ``cert_chain_pem``; raise :class:`SigningError` when it does not verify."""
    try:
        leaf = x509.load_pem_x509_certificates(cert_chain_pem)[0]
    except (ValueError, IndexError) as e:
        raise SigningError(f"the certificate chain could not be read: {e}") from e
    if alg not in _ALGS:
        raise SigningError(f"signing algorithm must be one of {', '.join(_ALGS)}, got {alg!r}")
    public = leaf.public_key()
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}.get(alg[-3:], hashes.SHA256())
    try:
        if isinstance(public, ec.EllipticCurvePublicKey) and alg.startswith("es"):
            size = (public.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise InvalidSignature(f"{len(signature)} bytes, expected {2 * size} (raw r || s)")
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            public.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
        elif isinstance(public, rsa.RSAPublicKey) and alg.startswith("ps"):
            public.verify(signature, data, padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size),
                          digest)
        elif isinstance(public, ed25519.Ed25519PublicKey) and alg == "ed25519":
            public.verify(signature, data)
        else:
            raise InvalidSignature(f"a {type(public).__name__} cannot verify {alg}")
    except (InvalidSignature, ValueError) as e:
        raise SigningError(f"the signature does not verify under the certificate "
                           f"{leaf.subject.rfc4514_string()} ({alg}; {e or 'bad signature'})") from e


def certificate_fingerprint(pem: bytes) -> str:
    """The SHA-256 fingerprint of the first certificate in ``pem``: lower-case hex of the hash of its DER
    encoding (what ``openssl x509 -noout -fingerprint -sha256`` prints, without the colons). Raises
    :class:`SigningError` when ``pem`` holds no certificate."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as e:
        raise SigningError(f"not a PEM certificate: {e}") from e
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def verify_chain(cert_chain_pem: bytes, root_pem: bytes) -> None:
    """Check that ``cert_chain_pem`` (leaf, then intermediates) is issued, link by link, under the root
    certificate ``root_pem``, and that every certificate is valid now; raise :class:`SigningError`."""
    try:
        chain = x509.load_pem_x509_certificates(cert_chain_pem)
        root = x509.load_pem_x509_certificate(root_pem)
    except ValueError as e:
        raise SigningError(f"the certificates could not be read: {e}") from e
    now = dt.datetime.now(dt.UTC)
    for cert in (*chain, root):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise SigningError(f"certificate {cert.subject.rfc4514_string()} is not valid now")
    _check_links(chain, root)


def _check_links(chain: Sequence[x509.Certificate], root: x509.Certificate) -> None:
    links = (*chain, root)
    for child, parent in zip(links, links[1:], strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as e:
            raise SigningError(
                f"certificate {child.subject.rfc4514_string()} is not issued by "
                f"{parent.subject.rfc4514_string()} ({e or 'signature does not verify'})"
            ) from e


def import_signer_factory(spec: str) -> Callable[[SignerMaterial], SignFn]:
    """The operator's signer factory named ``"package.module:factory"``: called with the
    :class:`SignerMaterial` (chain and root, no key), it returns the :data:`SignFn` that asks the KMS or
    HSM to sign. Raises :class:`SigningError` when the name is malformed or names nothing callable."""
    import importlib

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr or not all(p.isidentifier() for p in (*module_name.split("."), *attr.split("."))):
        raise SigningError(f"a signer factory is named 'package.module:factory', got {spec!r}")
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as e:
        raise SigningError(f"cannot import the signer factory's module {module_name!r}: {e}") from e
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise SigningError(f"{module_name!r} has no {attr!r} (the signer factory {spec!r})")
    if not callable(target):
        raise SigningError(f"the signer factory {spec!r} is not callable")
    return target


# --------------------------------------------------------------------------------------------------


def _alg_for_key(key: object) -> str:
    """The C2PA algorithm for a private key or a certificate's public key."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        algs = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name not in algs:
            raise SigningError(f"EC signing keys must use P-256, P-384 or P-521, got {key.curve.name}")
        return algs[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise SigningError(f"RSA signing keys must have at least 2048 bits, got {key.key_size}")
        return "ps256"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    raise SigningError(f"signing keys must be EC, RSA or Ed25519, got {type(key).__name__}")


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _name(organisation: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    days: int,
    *,
    ca: bool,
    path_length: int | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        ).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, _DOCUMENT_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _create_dev_ca(directory: Path, organisation: str) -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    inter_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(organisation, f"{organisation} root")
    inter_name = _name(organisation, f"{organisation} intermediate")
    leaf_name = _name(organisation, f"{organisation} signer")

    root = _issue(root_name, root_key.public_key(), root_name, root_key, _ROOT_DAYS, ca=True, path_length=1)
    inter = _issue(
        inter_name, inter_key.public_key(), root_name, root_key, _INTERMEDIATE_DAYS, ca=True, path_length=0
    )
    leaf = _issue(leaf_name, leaf_key.public_key(), inter_name, inter_key, _LEAF_DAYS, ca=False)

    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # Key first, trust anchor last: an interrupted run leaves a partial set, which ensure_dev_ca refuses.
    _write_atomic(directory / KEY_FILE, key_pem, 0o600)
    _write_atomic(directory / CHAIN_FILE, leaf.public_bytes(pem) + inter.public_bytes(pem), 0o644)
    _write_atomic(directory / ROOT_FILE, root.public_bytes(pem), 0o644)

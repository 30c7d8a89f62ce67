"""provenance.keys: the development CA, loading signer material, the callback signer."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from provenance.errors import SigningError
from provenance.keys import (
    CHAIN_FILE,
    KEY_FILE,
    ROOT_FILE,
    SignerMaterial,
    callback_signer_from_key,
    check_sign_fn,
    ensure_dev_ca,
    import_signer_factory,
    load_signer_material,
)

DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")


def test_dev_ca_is_created_once_then_loaded(tmp_path: Path) -> None:
    first = ensure_dev_ca(tmp_path / "keys")
    second = ensure_dev_ca(tmp_path / "keys")

    assert second == first
    assert load_signer_material(tmp_path / "keys") == first
    assert first.alg == "es256"
    assert stat.S_IMODE((tmp_path / "keys" / KEY_FILE).stat().st_mode) == 0o600
    assert not [p.name for p in (tmp_path / "keys").iterdir() if p.name.endswith(".part")]


def test_concurrent_first_calls_agree(tmp_path: Path) -> None:
    results: list[SignerMaterial] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_dev_ca(tmp_path))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 4
    assert all(r == results[0] for r in results)


def test_chain_has_the_profile_c2pa_accepts(material: SignerMaterial) -> None:
    chain = x509.load_pem_x509_certificates(material.cert_chain_pem)
    root = x509.load_pem_x509_certificate(material.root_pem)

    assert len(chain) == 2, "leaf + intermediate, never the root"
    leaf, intermediate = chain
    assert root not in chain
    assert all(c.version is x509.Version.v3 for c in (*chain, root))
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)

    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING}
    for cert in (leaf, intermediate):
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]


def test_repr_never_shows_the_private_key(material: SignerMaterial) -> None:
    key_body = material.private_key_pem.decode().splitlines()[1]

    for text in (repr(material), str(material), f"{material}", repr([material])):
        assert "PRIVATE KEY" not in text
        assert key_body not in text
        assert "hidden" in text
    assert "ConsentGate development CA" in repr(material)


def test_callback_signer_produces_a_verifiable_es256_signature(material: SignerMaterial) -> None:
    sign = callback_signer_from_key(material)
    signature = sign(b"to be signed")

    assert len(signature) == 64, "raw r||s, the COSE form"
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    public = x509.load_pem_x509_certificate(material.cert_chain_pem).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(encode_dss_signature(r, s), b"to be signed", ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("missing", [CHAIN_FILE, KEY_FILE, ROOT_FILE])
def test_partial_directory_is_refused_not_overwritten(tmp_path: Path, missing: str) -> None:
    ensure_dev_ca(tmp_path)
    (tmp_path / missing).unlink()
    kept = {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.startswith(".")}

    with pytest.raises(SigningError, match="found only"):
        ensure_dev_ca(tmp_path)
    with pytest.raises(SigningError, match=f"{missing} is missing"):
        load_signer_material(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.startswith(".")} == kept


def test_empty_directory_cannot_be_loaded(tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="missing: run ensure_dev_ca"):
        load_signer_material(tmp_path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (KEY_FILE, b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n"),
        (CHAIN_FILE, b"garbage"),
        (ROOT_FILE, b""),
    ],
)
def test_corrupt_files_are_named(tmp_path: Path, name: str, content: bytes) -> None:
    ensure_dev_ca(tmp_path)
    (tmp_path / name).write_bytes(content)

    with pytest.raises(SigningError, match=name):
        load_signer_material(tmp_path)
    with pytest.raises(SigningError, match=name):
        ensure_dev_ca(tmp_path)


def test_key_from_another_ca_is_refused(tmp_path: Path) -> None:
    ensure_dev_ca(tmp_path / "a")
    other = ensure_dev_ca(tmp_path / "b")
    (tmp_path / "a" / KEY_FILE).write_bytes(other.private_key_pem)

    with pytest.raises(SigningError, match="does not match the leaf certificate"):
        load_signer_material(tmp_path / "a")


def test_chain_under_another_root_is_refused(tmp_path: Path) -> None:
    ensure_dev_ca(tmp_path / "a")
    other = ensure_dev_ca(tmp_path / "b")
    (tmp_path / "a" / ROOT_FILE).write_bytes(other.root_pem)

    with pytest.raises(SigningError, match="is not issued by"):
        load_signer_material(tmp_path / "a")


def test_signer_material_checks_itself(material: SignerMaterial) -> None:
    with pytest.raises(SigningError, match="signing algorithm"):
        SignerMaterial(material.cert_chain_pem, material.private_key_pem, material.root_pem, alg="md5")
    with pytest.raises(SigningError, match="private_key_pem"):
        SignerMaterial(material.cert_chain_pem, b"", material.root_pem)
    with pytest.raises(SigningError, match="cert_chain_pem"):
        SignerMaterial(b"", material.private_key_pem, material.root_pem)


def test_callback_signer_refuses_a_key_of_the_wrong_family(material: SignerMaterial) -> None:
    chain, key, root = material.cert_chain_pem, material.private_key_pem, material.root_pem
    rsa_like = SignerMaterial(chain, key, root, alg="ps256")
    with pytest.raises(SigningError, match="does not suit"):
        callback_signer_from_key(rsa_like)


def test_key_is_pkcs8_unencrypted(material: SignerMaterial) -> None:
    key = serialization.load_pem_private_key(material.private_key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert material.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


# --- a key in a KMS/HSM: the chain and root on disk, signing through a callback ----------------------


def test_chain_and_root_load_without_the_key(tmp_path: Path) -> None:
    full = ensure_dev_ca(tmp_path)
    (tmp_path / KEY_FILE).unlink()  # the key now lives in the KMS
    with pytest.raises(SigningError, match="signer-key.pem is missing"):
        load_signer_material(tmp_path)
    material = load_signer_material(tmp_path, with_key=False)
    assert material.private_key_pem is None and material.alg == "es256" == full.alg
    assert material.cert_chain_pem == full.cert_chain_pem and material.root_pem == full.root_pem
    assert "signs through a callback" in repr(material)
    with pytest.raises(SigningError, match="holds no private key"):
        callback_signer_from_key(material)
    (tmp_path / CHAIN_FILE).unlink()
    with pytest.raises(SigningError, match="install the KMS key's certificate chain"):
        load_signer_material(tmp_path, with_key=False)


def test_check_sign_fn_accepts_the_certificates_key_only(tmp_path: Path) -> None:
    material = ensure_dev_ca(tmp_path / "a")
    other = ensure_dev_ca(tmp_path / "b")
    check_sign_fn(material, callback_signer_from_key(material))
    with pytest.raises(SigningError, match="must be a pair"):
        check_sign_fn(material, callback_signer_from_key(other))  # a KMS key issued another certificate
    with pytest.raises(SigningError, match="expected 64"):
        check_sign_fn(material, lambda data: b"\x01" * 70)
    with pytest.raises(SigningError, match="must return bytes"):
        check_sign_fn(material, lambda data: "signature")  # type: ignore[arg-type,return-value]

    def unreachable(data: bytes) -> bytes:
        raise ConnectionError("kms.example: connection refused")

    with pytest.raises(SigningError, match="failed on a test signature: ConnectionError: kms.example"):
        check_sign_fn(material, unreachable)


@pytest.mark.parametrize("spec, message", [
    ("no_colon", "package.module:factory"),
    ("a.b:", "package.module:factory"),
    ("a-b:make", "package.module:factory"),
    ("consentgate_no_such_module:make", "cannot import"),
    ("provenance.keys:no_such_factory", "has no 'no_such_factory'"),
    ("provenance.keys:CHAIN_FILE", "not callable"),
])
def test_import_signer_factory_names_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(SigningError, match=message):
        import_signer_factory(spec)


def test_import_signer_factory_finds_a_factory() -> None:
    assert import_signer_factory("provenance.keys:callback_signer_from_key") is callback_signer_from_key

"""C2PA signing through an operator's KMS/HSM (``GOVERNANCE_C2PA_SIGNER``): the key never sits in the
service's key folder, releases still verify as Trusted, and every way the setup can be wrong is named at
start (or, for a KMS that fails later, blocks the release with the reason and leaves nothing behind)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from governance.app import create_app
from governance.config import ConfigError
from provenance.errors import SigningError
from provenance.keys import CHAIN_FILE, KEY_FILE, ROOT_FILE, ensure_dev_ca

# The operator's module: a client for their KMS. This one keeps the key in a file of its own, outside the
# service's data folder, and can be told to fail, as a KMS that becomes unreachable does.
KMS_MODULE = textwrap.dedent('''
    from pathlib import Path

    from provenance.keys import SignerMaterial, callback_signer_from_key

    HERE = Path(__file__).parent
    calls = []


    def make_signer(material):
        key = (HERE / "kms" / "signer-key.pem").read_bytes()
        sign = callback_signer_from_key(SignerMaterial(material.cert_chain_pem, key, material.root_pem, material.alg))

        def kms_sign(data):
            if (HERE / "kms" / "down").exists():
                raise ConnectionError("kms.internal: connection refused")
            calls.append(len(data))
            return sign(data)

        return kms_sign
''')


@pytest.fixture
def kms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder whose keys/c2pa holds only the chain and the root, and the operator's KMS module
    (importable as ``operator_kms``) holding the key."""
    issued = ensure_dev_ca(tmp_path / "issued")
    keys = tmp_path / "var" / "keys" / "c2pa"
    keys.mkdir(parents=True)
    for name in (CHAIN_FILE, ROOT_FILE):
        shutil.copy(tmp_path / "issued" / name, keys / name)
    (tmp_path / "mods" / "kms").mkdir(parents=True)
    assert issued.private_key_pem is not None
    (tmp_path / "mods" / "kms" / KEY_FILE).write_bytes(issued.private_key_pem)
    (tmp_path / "mods" / "operator_kms.py").write_text(KMS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    monkeypatch.delitem(sys.modules, "operator_kms", raising=False)
    return tmp_path


def test_releases_are_signed_through_the_kms_and_verify_as_trusted(make_api, kms):
    import operator_kms  # type: ignore[import-not-found]

    api = make_api(data_dir=kms / "var", c2pa_signer="operator_kms:make_signer")
    assert api.rt.keys.sign_fn is not None and api.rt.keys.material.private_key_pem is None
    assert len(operator_kms.calls) == 1  # one start, one check of the callback
    bob = api.account("bob")
    done = api.wait(bob, api.generate(bob, "a lighthouse at dusk")["id"])
    assert done["state"] == "released", done
    report = api.verify(api.download(bob, done["id"])).get_json()
    assert report["c2pa"]["state"] == "Trusted", report["c2pa"]
    assert len(operator_kms.calls) >= 2  # the start-up check, then the release
    from provenance.treehead import SignedTreeHead

    SignedTreeHead.from_dict(report["record"]["log_entry"]["signed_tree_head"]).verify(api.rt.keys.trust_anchor_pem)
    # the KMS goes down once another release is sealed: the log's new head (signed at each release) cannot
    # be signed, and says so
    api.rt.pipeline.on("sealed", lambda _: (kms / "mods" / "kms" / "down").touch())
    other = api.wait(bob, api.generate(bob, "a harbour at dawn")["id"])
    assert other["state"] == "released"
    r = api.call("GET", "/v1/log")
    assert r.status_code == 503 and "cannot be signed now" in r.get_json()["detail"], r.get_json()
    entry = api.verify(api.download(bob, other["id"])).get_json()["record"]["log_entry"]
    assert entry["signed_tree_head"] is None and "kms.internal" in entry["signed_tree_head_error"]
    assert entry["tree_size"] == 2 and entry["inclusion_proof"]  # the proof itself needs no signature
    assert not (kms / "var" / "keys" / "c2pa" / KEY_FILE).exists()  # no key was written on start


def test_a_kms_that_fails_at_sealing_blocks_the_release_and_leaves_nothing(make_api, kms):
    api = make_api(data_dir=kms / "var", c2pa_signer="operator_kms:make_signer")
    (kms / "mods" / "kms" / "down").touch()
    bob = api.account("bob")
    done = api.wait(bob, api.generate(bob, "a lighthouse at dusk")["id"])
    assert done["state"] == "blocked"
    assert any("kms.internal: connection refused" in r for r in done["reasons"]), done["reasons"]
    assert api.leftovers() == [] and not any((kms / "var" / "videos").iterdir())


def test_a_misconfigured_signer_stops_the_service_at_start(kms):
    var = kms / "var"
    with pytest.raises(ConfigError, match="package.module:factory"):
        create_app({"data_dir": var, "worker": "none", "c2pa_signer": "operator_kms"})
    with pytest.raises(SigningError, match="cannot import"):
        create_app({"data_dir": var, "worker": "none", "c2pa_signer": "operator_kmz:make_signer"})
    with pytest.raises(SigningError, match="has no 'make_signr'"):
        create_app({"data_dir": var, "worker": "none", "c2pa_signer": "operator_kms:make_signr"})
    # a KMS key that is not the certificate's: every manifest would fail verification
    other = ensure_dev_ca(kms / "other")
    assert other.private_key_pem is not None
    (kms / "mods" / "kms" / KEY_FILE).write_bytes(other.private_key_pem)
    with pytest.raises(SigningError, match="must be a pair"):
        create_app({"data_dir": var, "worker": "none", "c2pa_signer": "operator_kms:make_signer"})
    # the certificate chain is the operator's to install: none is invented
    (var / "keys" / "c2pa" / CHAIN_FILE).unlink()
    with pytest.raises(SigningError, match="install the KMS key's certificate chain"):
        create_app({"data_dir": var, "worker": "none", "c2pa_signer": "operator_kms:make_signer"})
    assert sorted(p.name for p in (var / "keys" / "c2pa").iterdir()) == [ROOT_FILE]


def test_the_cli_names_a_misconfigured_signer_in_one_line(kms):
    env = {"GOVERNANCE_C2PA_SIGNER": "operator_kms:make_signer", "PYTHONPATH": str(kms / "mods"),
           "PATH": "/usr/bin:/bin"}
    (kms / "mods" / "kms" / "down").touch()
    r = subprocess.run([sys.executable, "-m", "governance", "--data-dir", str(kms / "var"), "init"],
                       capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parents[2])
    assert r.returncode != 0 and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    assert "test signature: ConnectionError: kms.internal: connection refused" in r.stderr

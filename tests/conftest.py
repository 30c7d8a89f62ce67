"""Fixtures shared by every test package."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"
#: What the suite needs besides the checkout (README, "Testing"): the servers, and where each test meets them.
SERVERS = {
    "PostgreSQL": ("127.0.0.1", 5432, ("psycopg",)),
    "Redis": ("127.0.0.1", 6379, ("redis",)),
    "RabbitMQ": ("127.0.0.1", 5672, ("pika",)),
}
_NO_TESTDATA = f"test data not found at {TESTDATA}: the shared/ folder must sit beside the checkout"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The real media in ../shared/testdata (read-only: copy before changing)."""
    if not TESTDATA.is_dir():
        pytest.fail(_NO_TESTDATA, pytrace=False)
    return TESTDATA


def _reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError:
        return False
    return True


def pytest_report_header() -> list[str]:
    state = ", ".join(f"{name} {host}:{port} {'up' if _reachable(host, port) else 'NOT REACHABLE'}"
                      for name, (host, port, _) in SERVERS.items())
    return [f"needs: {state}; test data {TESTDATA} {'found' if TESTDATA.is_dir() else 'NOT FOUND'}"]


def _missing(exc: BaseException) -> str | None:
    """Why a test failed in one line, when it failed because something the suite needs is missing now: a
    server that does not answer (and the error came from its client), or ../shared/testdata."""
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    modules = {type(x).__module__.split(".")[0] for x in chain}
    text = " ".join(str(x) for x in chain)
    if not TESTDATA.is_dir() and str(TESTDATA) in text and any(
            isinstance(x, (FileNotFoundError, pytest.fail.Exception)) for x in chain):
        return _NO_TESTDATA
    for name, (host, port, clients) in SERVERS.items():
        from_it = bool(modules & set(clients)) or (any(isinstance(x, ConnectionError) for x in chain)
                                                    and f":{port}" in text)
        if from_it and not _reachable(host, port):
            return f"{name} is not reachable at {host}:{port}: the tests need it running (README, Testing)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"needs(server): the test talks to that server, one of {', '.join(SERVERS)}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked ``needs("Redis")`` errors at once, in one line, when that server does not answer (a
    client waiting for a broker that never comes would hang the run instead)."""
    for mark in item.iter_markers("needs"):
        for name in mark.args:
            host, port, _ = SERVERS[name]
            if not _reachable(host, port):
                pytest.fail(f"{name} is not reachable at {host}:{port}: the tests need it running (README, Testing)",
                            pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test that fails because a server or the test data is missing says so in one line, not in a stack."""
    report = yield
    if report.failed and call.excinfo is not None:
        reason = _missing(call.excinfo.value)
        if reason is not None:
            report.longrepr = reason
    return report


@pytest.fixture(scope="session")
def faces_dir(testdata: Path) -> Path:
    return testdata / "faces"


@pytest.fixture(scope="session")
def c2pa_dir(testdata: Path) -> Path:
    return testdata / "c2pa"


PG_ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


@pytest.fixture
def sqlite_file_engine(tmp_path: Path) -> Iterator[Any]:
    """An engine on a migrated SQLite database in a file, ``tmp_path / "g.db"`` (WAL, ``synchronous=FULL``: as the
    service runs it), disposed afterwards."""
    from governance.db import init_db, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    init_db(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server at 127.0.0.1:5432 (trust auth), dropped afterwards. Ask for it
    before ``make_api`` so that it is dropped after the app is closed."""
    psycopg = pytest.importorskip("psycopg")
    name = f"cg_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def tiny_wan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Wan text-to-video pipeline with random weights and the real architecture, a few kB in all, saved
    the way an operator's model directory is laid out (``save_pretrained``): what the diffusers generator
    loads in tests, since real weights cannot be downloaded here."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    words = "a an the city at night snow forest walk beach over flies sea dawn harbour comet captain".split()
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    pipe = diffusers.WanPipeline(
        tokenizer=PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"),
        text_encoder=UMT5EncoderModel(UMT5Config(vocab_size=len(vocab), d_model=16, d_kv=4, d_ff=32, num_layers=1,
                                                 num_heads=2, relative_attention_num_buckets=8)),
        vae=diffusers.AutoencoderKLWan(base_dim=3, z_dim=4, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                       temperal_downsample=[False, True, True], latents_mean=[0.0] * 4,
                                       latents_std=[1.0] * 4),
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(shift=3.0),
        transformer=diffusers.WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8,
                                                    in_channels=4, out_channels=4, text_dim=16, freq_dim=32,
                                                    ffn_dim=32, num_layers=1, rope_max_seq_len=32),
    )
    out = tmp_path_factory.mktemp("models") / "tiny-wan"
    pipe.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def layout_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image encoder with the interface of an operator's CLIP export (N x 3 x 64 x 64 in, N x 48 out)
    but hand-set weights: the colour layout on a 4 x 4 grid. Two views of one picture embed alike and
    different scenes do not, which is what the visual check's plumbing needs; it recognises nothing."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from torch import nn

    from bench.insightface import export_onnx

    class Layout(nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            return nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)

    d = tmp_path_factory.mktemp("models") / "layout-encoder"
    d.mkdir()
    export_onnx(Layout(), torch.zeros(1, 3, 64, 64), d / "image_encoder.onnx", ["pixels"], ["embedding"],
                dynamic={"pixels": {0: "n"}, "embedding": {0: "n"}})
    (d / "preprocess.json").write_text('{"size": 64}')
    return d


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """The same for a test module that reads the test data when it is imported."""
    report = yield
    if report.failed and not TESTDATA.is_dir() and str(TESTDATA) in str(report.longrepr):
        report.longrepr = _NO_TESTDATA
    return report

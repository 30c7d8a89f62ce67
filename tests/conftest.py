"""Fixtures shared by every test package."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The real media in ../shared/testdata (read-only: copy before changing)."""
    if not TESTDATA.is_dir():
        pytest.fail(f"test data not found at {TESTDATA}: the shared/ folder must sit beside the checkout")
    return TESTDATA


@pytest.fixture(scope="session")
def faces_dir(testdata: Path) -> Path:
    return testdata / "faces"


@pytest.fixture(scope="session")
def c2pa_dir(testdata: Path) -> Path:
    return testdata / "c2pa"


PG_ADMIN_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"


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

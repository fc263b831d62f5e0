"""The Embedder contract, run against every implementation.

``hashing`` always runs; the real models (marked slow) load once per session and embed a few
texts each, so the whole file stays quick.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from core.settings import EmbeddingSettings
from index.embed import Embedder, make_embedder

REAL = ["use-multilingual-v3", "multilingual-e5-small", "all-minilm-l6-v2"]

TEXTS = [
    "Российские эмигранты в Грузии распространяют антироссийскую истерию.",
    "Western sanctions against Russia have hurt Europe far more than Russia itself.",
    "Українські біженці в Європі скоюють злочини, і їм там більше не раді.",
]


@functools.cache
def _load(name: str) -> Embedder:
    return make_embedder(EmbeddingSettings(model=name, threads=2, batch_size=2))


@pytest.fixture(
    scope="module",
    params=["hashing", *(pytest.param(n, marks=pytest.mark.slow) for n in REAL)],
)
def embedder(request: pytest.FixtureRequest) -> Embedder:
    """One loaded embedder per implementation (cached across the session)."""
    return _load(request.param)


def test_is_an_embedder(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)


def test_documents_shape_dtype_unit_norm(embedder: Embedder) -> None:
    # batch_size=2 with 3 texts: exercises a partial last batch
    m = embedder.embed_documents(TEXTS)
    assert m.shape == (len(TEXTS), embedder.space.dim)
    assert m.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    # distinct texts give distinct vectors
    assert float(m[0] @ m[1]) < 0.999


def test_query_shape_dtype_unit_norm(embedder: Embedder) -> None:
    q = embedder.embed_query(TEXTS[1])
    assert q.shape == (embedder.space.dim,)
    assert q.dtype == np.float32
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5


def test_deterministic_and_batch_independent(embedder: Embedder) -> None:
    a = embedder.embed_documents(TEXTS)
    b = embedder.embed_documents(TEXTS)
    np.testing.assert_allclose(a, b, atol=1e-6)
    alone = embedder.embed_documents([TEXTS[2]])[0]
    np.testing.assert_allclose(alone, a[2], atol=1e-4)


def test_query_vs_documents(embedder: Embedder) -> None:
    q = embedder.embed_query(TEXTS[0])
    d = embedder.embed_documents([TEXTS[0]])[0]
    if not embedder.space.query_prefix and not embedder.space.document_prefix:
        np.testing.assert_allclose(q, d, atol=1e-5)
    else:
        # prefixed models: different vectors, but the same text is still its own nearest neighbour
        assert not np.allclose(q, d, atol=1e-4)
        docs = embedder.embed_documents(TEXTS)
        assert int(np.argmax(docs @ q)) == 0


def test_empty_input(embedder: Embedder) -> None:
    m = embedder.embed_documents([])
    assert m.shape == (0, embedder.space.dim)
    assert m.dtype == np.float32


def test_long_input_does_not_crash(embedder: Embedder) -> None:
    long_text = " ".join([TEXTS[0]] * 40)  # ~320 words, ~700 tokens: past the 256/512-token windows
    m = embedder.embed_documents([long_text, TEXTS[1]])
    assert m.shape == (2, embedder.space.dim)
    assert np.isfinite(m).all()
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)


def test_space_is_recorded(embedder: Embedder) -> None:
    space = embedder.space
    assert space.dim == embedder.embed_query("x").shape[0]
    assert space.model and space.backend and space.precision and space.pooling
    if space.model != "hashing":
        assert len(space.weights_hash) == 64  # sha256 of the weight file(s)
        assert space.revision


@pytest.mark.slow
def test_no_two_models_share_a_space_key() -> None:
    spaces = [_load(n).space for n in ["hashing", *REAL]]
    assert len({s.key for s in spaces}) == len(spaces)
    assert len({s.slug for s in spaces}) == len(spaces)
    # two 384-d models: the dimension alone cannot tell them apart, the key does
    e5, minilm = _load("multilingual-e5-small").space, _load("all-minilm-l6-v2").space
    assert e5.dim == minilm.dim and e5.key != minilm.key

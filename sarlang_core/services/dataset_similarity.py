"""Overall dataset similarity of a project (paper Sec. 3 and Appendix A/B): mean and variance of
the cosine similarity over all pairs of text embeddings (Sentence-BERT all-MiniLM-L6-v2) and of
image features (a features file or a local vision model; the paper used VGG16).

Called by the GUI and by ``sarlang-cli dataset similarity``; re-exported by
``services.datasets``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, Optional

from ..errors import SarlangError
from ..progress import CancelToken, ProgressCallback
from .dataset_common import open_store, project_pipeline, render_image

TEXT_KINDS = ("captions", "questions", "answers", "qa")
# Table 3 of the paper: SARLANG-1M (SAR), mean / variance (118,331 images).
PAPER_SIMILARITY = {"image": {"mean": 0.25, "var": 0.06}, "text": {"mean": 0.49, "var": 0.16}}
_CAPTIONS = ("caption_concise", "caption_detailed")


def _texts(store, kind: str, status) -> tuple:
    """(count, iterator of texts, description) of one text kind of the store."""
    from ..datasets.records import ITEM_TYPES

    if kind not in TEXT_KINDS:
        raise SarlangError(f"unknown text kind {kind!r}; expected one of {', '.join(TEXT_KINDS)}")
    types = list(_CAPTIONS) if kind == "captions" else [t for t in ITEM_TYPES if t not in _CAPTIONS]
    count = store.count_items(type=types, status=status)
    items = store.iter_items(type=types, status=status)
    pick = {"captions": lambda i: i.answer, "answers": lambda i: i.answer, "questions": lambda i: i.question,
            "qa": lambda i: f"{i.question} {i.answer}"}[kind]
    return count, (pick(i) for i in items), kind


def _stats_dict(stats, what: str) -> Dict[str, Any]:
    return {"n": stats.n, "pairs": stats.pairs, "mean": stats.mean, "var": stats.var, "std": stats.std,
            "what": what}


def similarity_stats(store_path, *, text: Optional[str] = "captions", image_features=None, image_model=None,
                     status=None, progress: Optional[ProgressCallback] = None,
                     cancel: Optional[CancelToken] = None, text_model: Any = None,
                     batch_size: int = 64) -> Dict[str, Dict[str, Any]]:
    """``{"text": {n, pairs, mean, var, std, what}, "image": {...}}``; "text" is absent when
    ``text`` is None, "image" when neither ``image_features`` (a .npy, see
    ``datasets.image_features``) nor ``image_model`` (a local vision model folder) is given.
    ``status``: only items of that status (a value or a list); images: those with such an item.
    ``text_model``: a text encoder to use instead of all-MiniLM-L6-v2 (tests)."""
    from ..datasets.similarity import iter_text_embeddings, pairwise_cosine_stats

    if image_features is not None and image_model is not None:
        raise SarlangError("give image features or an image model, not both")
    out: Dict[str, Dict[str, Any]] = {}
    with open_store(store_path, create=False) as store:
        if text is not None:
            count, texts, kind = _texts(store, text, status)
            if count < 2:
                raise SarlangError(f"{store_path}: text similarity needs at least two {kind}, found {count}")
            chunks = iter_text_embeddings(texts, text_model, batch_size=batch_size, total=count,
                                          progress=progress, cancel=cancel)
            model_name = "all-MiniLM-L6-v2" if text_model is None else type(text_model).__name__
            out["text"] = _stats_dict(pairwise_cosine_stats(chunks), f"{kind} ({model_name})")
        if image_features is not None or image_model is not None:
            wanted = store.image_ids(**({} if status is None else {"status": status}))
            if len(wanted) < 2:
                raise SarlangError(f"{store_path}: image similarity needs at least two images, found {len(wanted)}")
            if image_features is not None:
                from ..datasets.image_features import feature_rows

                rows = feature_rows(image_features, store.image_ids(), wanted)
                out["image"] = _stats_dict(pairwise_cosine_stats(rows), f"features {Path(image_features).name}")
            else:
                out["image"] = _model_image_stats(store, store_path, wanted, image_model, progress, cancel)
    return out


def _model_image_stats(store, store_path, wanted, image_model, progress, cancel) -> Dict[str, Any]:
    from ..datasets.image_features import ImageEncoder, iter_image_features
    from ..datasets.similarity import pairwise_cosine_stats

    encoder = ImageEncoder(image_model)
    pipeline = project_pipeline(store)
    root = Path(store_path).resolve().parent

    def images() -> Iterator:
        for image_id in wanted:     # what a model is trained on: the image through the Pipeline
            yield render_image(store.image(image_id), pipeline, root, max_pixels=1 << 20)

    chunks = iter_image_features(images(), encoder, total=len(wanted), progress=progress, cancel=cancel)
    return _stats_dict(pairwise_cosine_stats(chunks), f"model {encoder.name}")

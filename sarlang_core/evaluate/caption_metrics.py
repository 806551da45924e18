"""Caption metrics as the authors computed them: pycocoevalcap's Bleu(4), Rouge() and Cider().

``tokenize="whitespace"`` (the authors' default) hands the strings to the scorers as they are:
the scorers split on spaces, so case and punctuation stay part of the words ("ship." is not
"ship"). ``tokenize="ptb"`` first applies our pure-Python copy of the COCO PTB tokenizer
(lower case, punctuation dropped), which is what most captioning papers report.
Scores are fractions (0.35, not 35.0); CIDEr is the corpus score pycocoevalcap reports.

``engine="fast"`` (the default) computes the same numbers with our array implementation
(``caption_fast``: the same figures, to the last bit in our tests, several times quicker);
``engine="reference"`` runs pycocoevalcap's own scorer classes.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Union

from ..errors import SarlangError
from .ptb_tokenizer import ptb_tokenize

__all__ = ["CaptionScores", "CAPTION_KEYS", "ENGINES", "TOKENIZERS", "score_captions", "score_captions_detailed"]

CAPTION_KEYS = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr")
TOKENIZERS = ("whitespace", "ptb")
ENGINES = ("fast", "reference")

References = Union[Sequence[str], Sequence[Sequence[str]]]


@dataclass
class CaptionScores:
    corpus: Dict[str, float]
    per_sample: List[Dict[str, float]] = field(default_factory=list)   # same keys, one dict per sample
    tokenize: str = "whitespace"


def _prepare(predictions: Sequence[str], references: References, tokenize: str):
    if tokenize not in TOKENIZERS:
        raise SarlangError(f"tokenize must be one of {', '.join(TOKENIZERS)}, got {tokenize!r}")
    if isinstance(predictions, str) or isinstance(references, str):
        raise SarlangError("predictions and references must be lists of captions, not one string")
    if len(predictions) != len(references):
        raise SarlangError(f"{len(predictions)} predictions but {len(references)} references: "
                           "they must pair up one to one")
    if not predictions:
        raise SarlangError("no captions to score")
    prep = ptb_tokenize if tokenize == "ptb" else (lambda s: s)
    gts, res = {}, {}
    for i, (pred, refs) in enumerate(zip(predictions, references)):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            raise SarlangError(f"sample {i} has no reference caption")
        # pycocoevalcap asserts on non-str input and its ROUGE divides by zero-length token lists
        # only for truly empty lists, which "".split(" ") never gives; None becomes "".
        res[i] = [prep(str(pred) if pred is not None else "")]
        gts[i] = [prep(str(r) if r is not None else "") for r in refs]
    return gts, res


def score_captions_detailed(predictions: Sequence[str], references: References, *,
                            tokenize: str = "whitespace", engine: str = "fast") -> CaptionScores:
    """Corpus scores plus per-sample scores (BLEU-n per sentence as pycocoevalcap computes it,
    with that sentence's own brevity penalty; ROUGE-L and CIDEr per sample)."""
    if engine not in ENGINES:
        raise SarlangError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    gts, res = _prepare(predictions, references, tokenize)
    if engine == "fast":
        bleu, bleu_each, rouge, rouge_each, cider, cider_each = _fast(gts, res)
    else:
        bleu, bleu_each, rouge, rouge_each, cider, cider_each = _reference(gts, res)
    corpus = {f"Bleu_{n + 1}": float(bleu[n]) for n in range(4)}
    corpus["ROUGE_L"] = float(rouge)
    corpus["CIDEr"] = float(cider)
    columns = [list(map(float, bleu_each[n])) for n in range(4)]
    columns += [list(map(float, rouge_each)), list(map(float, cider_each))]
    per_sample = [dict(zip(CAPTION_KEYS, row)) for row in zip(*columns)]
    return CaptionScores(corpus, per_sample, tokenize)


def _fast(gts, res):
    from .caption_fast import fast_caption_scores

    s = fast_caption_scores([res[i][0] for i in range(len(res))], [gts[i] for i in range(len(gts))])
    return s.bleu, s.bleu_each.tolist(), s.rouge, s.rouge_each.tolist(), s.cider, s.cider_each.tolist()


def _reference(gts, res):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    with contextlib.redirect_stdout(io.StringIO()):   # BleuScorer prints even at verbose=0 in some builds
        bleu, bleu_each = Bleu(4).compute_score(gts, res, verbose=0)
        rouge, rouge_each = Rouge().compute_score(gts, res)
        if any(r.split() for refs in gts.values() for r in refs):
            cider, cider_each = Cider().compute_score(gts, res)
        else:   # no reference words at all: pycocoevalcap's CIDEr fails on max() of nothing
            cider, cider_each = 0.0, [0.0] * len(res)
    return bleu, bleu_each, rouge, rouge_each, cider, cider_each


def score_captions(predictions: Sequence[str], references: References, *,
                   tokenize: str = "whitespace", engine: str = "fast") -> Dict[str, float]:
    """``{"Bleu_1".."Bleu_4", "ROUGE_L", "CIDEr"}`` for paired predictions and references
    (one reference string per prediction, or a list of them). ``engine``: "fast" (ours, the
    default) or "reference" (pycocoevalcap's classes); both give the same figures."""
    return score_captions_detailed(predictions, references, tokenize=tokenize, engine=engine).corpus

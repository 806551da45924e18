"""Caption metrics, VQA judging, benchmark runs and reports (no Qt here).

The metrics layer: ``score_captions`` (pycocoevalcap BLEU/ROUGE_L/CIDEr), ``score_vqa`` (the
paper's rule + LLM-judge accuracy, or a stricter variant), the judge and its verdict cache, and
the reader of LLaMA-Factory prediction files.
"""

from .applications import APPLICATIONS, QUESTION_TYPES, UNSPECIFIED, application_of, classify
from .caption_metrics import CAPTION_KEYS, CaptionScores, score_captions, score_captions_detailed
from .judge import (
    JUDGE_PROMPT,
    JUDGE_PROMPTS,
    RELEASED_PROMPT,
    JudgeVerdict,
    LLMJudge,
    VerdictCache,
    default_cache_path,
    parse_verdict,
)
from .predictions import PredictionFile, PredictionRecord, question_from_prompt, read_predictions
from .ptb_tokenizer import ptb_tokenize, ptb_tokens
from .vqa_metrics import VqaSample, VqaScores, VqaVerdict, score_vqa
from .vqa_rules import paper_prejudge, parse_number, strict_prejudge

__all__ = [
    "APPLICATIONS", "QUESTION_TYPES", "UNSPECIFIED", "application_of", "classify",
    "CAPTION_KEYS", "CaptionScores", "score_captions", "score_captions_detailed",
    "JUDGE_PROMPT", "JUDGE_PROMPTS", "RELEASED_PROMPT",
    "JudgeVerdict", "LLMJudge", "VerdictCache",
    "default_cache_path", "parse_verdict",
    "PredictionFile", "PredictionRecord", "question_from_prompt", "read_predictions",
    "ptb_tokenize", "ptb_tokens",
    "VqaSample", "VqaScores", "VqaVerdict", "score_vqa",
    "paper_prejudge", "parse_number", "strict_prejudge",
]

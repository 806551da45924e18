"""Helpers for the fine-tuning tests. The fixtures (trainable_qwen, toy_json, trained_run) are
session-wide, in tests/support/tiny_models.py: request them by name, do not import them.

    from .train_fixtures import ANSWERS, QUESTION, toy_config
"""

from __future__ import annotations

from sarlang_core.train.demo import ANSWERS, QUESTION, write_toy_images
from sarlang_core.train.demo import write_toy_dataset as write_toy_json
from support.tiny_models import toy_config

__all__ = ["ANSWERS", "QUESTION", "write_toy_json", "write_toy_images", "toy_config"]

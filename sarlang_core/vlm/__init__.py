"""Vision-language models: backends (local transformers + PEFT, OpenAI-compatible HTTP), prompts,
boxes and coordinates, model folders. Submodules import torch/transformers only when used."""

from .backend import ChatTurn, GenerationConfig, VLMBackend

__all__ = ["ChatTurn", "GenerationConfig", "VLMBackend"]

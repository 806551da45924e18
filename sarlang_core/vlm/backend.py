"""What every vision-language backend offers: load, stream an answer, cancel, unload.

A conversation is a list of ChatTurns; the image belongs to the first user turn (as in the
SARLANG-1M data). ``stream`` is a generator of text pieces; a CancelToken stops it between pieces.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, Optional, Protocol, Sequence, runtime_checkable

from ..errors import RequestError
from ..progress import CancelToken, ProgressCallback

ROLES = ("user", "assistant")


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = field(default=256, metadata={"help": "longest answer, in tokens", "min": 1, "max": 8192})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy (reproducible)", "min": 0.0, "max": 2.0})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass", "min": 0.01, "max": 1.0})
    seed: Optional[int] = field(default=0, metadata={"help": "sampling seed (None = random)"})

    def __post_init__(self) -> None:
        if not (isinstance(self.max_new_tokens, int) and 1 <= self.max_new_tokens <= 8192):
            raise RequestError(f"max_new_tokens must be 1..8192, got {self.max_new_tokens!r}")
        if not (0.0 <= self.temperature <= 2.0):
            raise RequestError(f"temperature must be 0..2, got {self.temperature!r}")
        if not (0.0 < self.top_p <= 1.0):
            raise RequestError(f"top_p must be in (0, 1], got {self.top_p!r}")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChatTurn:
    role: str
    text: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise RequestError(f"a chat turn's role is 'user' or 'assistant', got {self.role!r}")


def check_turns(turns: Sequence[ChatTurn]) -> None:
    """A conversation must end with a non-empty user question."""
    if not turns or turns[-1].role != "user":
        raise RequestError("the conversation must end with a user question")
    if not turns[-1].text.strip():
        raise RequestError("the question is empty")


@runtime_checkable
class VLMBackend(Protocol):
    """Implemented by LocalBackend (transformers + PEFT) and OpenAIBackend (HTTP)."""

    @property
    def loaded(self) -> bool: ...

    def load(self, *, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> None: ...

    def stream(self, image, turns: Sequence[ChatTurn], config: GenerationConfig = GenerationConfig(), *,
               cancel: Optional[CancelToken] = None) -> Iterator[str]: ...

    def unload(self) -> None: ...

    def identity(self) -> Dict[str, Any]:
        """What produced an answer (model, adapter, endpoint; never a secret), for transcripts."""
        ...

    def model_input_size(self, width: int, height: int) -> tuple:
        """(width, height) of the image as the model sees it after its own resize."""
        ...

"""Typed errors. Each carries a message a person can act on; the CLI prints it on one line."""

from __future__ import annotations


class SarlangError(Exception):
    """Base class of every error the tool reports to a user."""


class SceneError(SarlangError):
    """A scene could not be opened or read."""

    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnsupportedSceneError(SceneError):
    """The file opens but its content is not something the tool can show (e.g. RGB, 0 bands)."""


class PipelineError(SarlangError):
    """A preprocessing recipe is invalid (unknown filter, bad window, bad percentiles...)."""


class ExportError(SarlangError):
    """An output could not be written. The input is never touched and no partial file is left."""


class CancelledError(SarlangError):
    """Long work was cancelled through its CancelToken."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


class ModelError(SarlangError):
    """A model or adapter folder cannot be used (not a model, unsupported family, wrong base...)."""


class OutOfMemoryError(ModelError):
    """The model ran out of (GPU) memory while answering: a smaller batch or image may fit."""


class DeviceLostError(ModelError):
    """The GPU stopped working mid-answer (lost, reset, a driver fault): the model left it; work done
    so far is kept and what is left can run again (on the CPU, or on the GPU once it is back)."""


class EndpointError(SarlangError):
    """An OpenAI-compatible endpoint failed (unreachable, 401, 429, timeout, bad reply)."""


class RequestError(SarlangError):
    """A question or region the model cannot be asked (empty question, region outside the scene)."""


class TrainError(SarlangError):
    """A training run cannot be configured, started, resumed, merged or exported (message says why)."""


class ExplainError(SarlangError):
    """An answer cannot be explained (no gradients from this backend, unknown visual-token layout,
    a word not in the answer, an empty answer...)."""

"""Helpers of the OpenAI-compatible backend: secrets, URLs, the keyring, image sizing, retry
timing and readable connection errors. Kept apart so the backend reads as request logic."""

from __future__ import annotations

import email.utils
import logging
import math
import socket
import time
from typing import Any, Optional, Tuple

from ..errors import EndpointError, RequestError
from ..progress import CancelToken, check
from ..urls import redact_url

log = logging.getLogger(__name__)

KEYRING_SERVICE = "sarlang-studio"
POLL = 0.05               # s between cancel checks while waiting


class Secret:
    """Holds the key; prints as <secret> in reprs, debuggers and ``vars()`` dumps."""
    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


def safe_url(url: str) -> str:
    """The URL as it may be shown: no userinfo, no key-like query parameters (``urls.redact_url``)."""
    return redact_url(url)


def keyring_key(*urls: str) -> Optional[str]:
    try:
        import keyring
        for name in dict.fromkeys(u for url in urls for u in (url.rstrip("/"), url)):
            if key := keyring.get_password(KEYRING_SERVICE, name):
                return key
    except Exception as exc:  # no backend, locked keyring, DBus trouble...: all mean "no key here"
        log.debug("no key from the keyring: %s", type(exc).__name__)
    return None


def store_api_key(base_url: str, key: str) -> None:
    """Store ``key`` for ``base_url`` in the OS keyring (what ``keyring set sarlang-studio URL`` does)."""
    if not key or not key.strip():
        raise RequestError("the API key is empty")
    try:
        import keyring
        keyring.set_password(KEYRING_SERVICE, base_url.rstrip("/"), key.strip())
    except Exception as e:
        raise EndpointError(f"could not store the key: no usable OS keyring ({type(e).__name__}); "
                            "set OPENAI_API_KEY in the environment instead") from None


def fit_size(width: int, height: int, max_pixels: int, multiple: int = 1) -> Tuple[int, int]:
    """(w, h) with w*h <= max_pixels, aspect kept (to a pixel), optionally sides multiple of ``multiple``."""
    w, h = int(width), int(height)
    if w < 1 or h < 1:
        raise RequestError(f"the image is empty ({width} x {height})")
    if w * h > max_pixels:
        s = math.sqrt(max_pixels / (w * h))
        w, h = max(1, math.floor(w * s)), max(1, math.floor(h * s))
        while w * h > max_pixels:   # float rounding at the boundary
            w, h = (w - 1, h) if w >= h else (w, h - 1)
    if multiple > 1:
        w, h = max(multiple, w // multiple * multiple), max(multiple, h // multiple * multiple)
    return w, h


def to_pil(image: Any):
    """A PIL image in mode L or RGB from a PIL image or a uint8 (H, W), (H, W, 3|4) array."""
    from PIL import Image
    if not isinstance(image, Image.Image):
        import numpy as np
        arr = np.asarray(image)
        if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
            raise RequestError(f"the image must be 8-bit grey or RGB (stretch it first), got {arr.dtype} {arr.shape}")
        image = Image.fromarray(np.ascontiguousarray(arr))
    if image.mode in ("L", "RGB"):
        return image
    if image.mode in ("LA", "1"):
        return image.convert("L")
    if image.mode in ("RGBA", "P", "PA", "CMYK", "YCbCr"):
        return image.convert("RGB")
    raise RequestError(f"the image must be 8-bit grey or RGB (stretch it first), got PIL mode {image.mode}")


def delta_text(chunk: Any) -> str:
    try:
        return chunk.choices[0].delta.content or "" if chunk.choices else ""
    except (AttributeError, IndexError, TypeError):
        return ""


def abort_stream(stream: Any) -> None:
    """Close a stream now, even while another thread is blocked reading it (close alone waits)."""
    try:
        stream.response.extensions["network_stream"].get_extra_info("socket").shutdown(socket.SHUT_RDWR)
    except Exception as exc:  # no such socket (other transport): close() below still releases it
        log.debug("no socket to shut down (%s)", type(exc).__name__)
    try:
        stream.close()
    except Exception as exc:
        log.debug("closing the stream failed: %s", exc)


def sleep_cancellable(seconds: float, cancel: Optional[CancelToken]) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        check(cancel)
        time.sleep(min(POLL, left))
    check(cancel)


def retry_after_seconds(headers: Any) -> Optional[float]:
    """Seconds from Retry-After (seconds or an HTTP date) or retry-after-ms; None if absent/bad."""
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000.0)
        if (value := headers.get("retry-after")) is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except Exception as exc:
        log.debug("unreadable Retry-After header (%s)", exc)
        return None


def connection_reason(e: BaseException) -> str:
    x: Optional[BaseException] = e
    for _ in range(20):   # walk the cause chain down to the socket error
        if x is None:
            break
        if isinstance(x, ConnectionRefusedError):
            return "connection refused"
        if isinstance(x, socket.gaierror):
            return "host name not found"
        if isinstance(x, ConnectionResetError):
            return "connection reset by the server"
        if type(x).__name__.startswith("SSL"):
            return f"TLS error ({x})"
        x = x.__cause__ or x.__context__
    return "connection error"


def error_detail(e: Any) -> str:
    """The server's own message from an error body ({"error": {"message"}}, {"message"}, {"detail"})."""
    body, msg = getattr(e, "body", None), None
    if isinstance(body, dict):
        inner = body.get("error")
        msg = inner.get("message") if isinstance(inner, dict) else inner
        msg = msg or body.get("message") or body.get("detail")
    if not isinstance(msg, str) or not msg.strip():
        msg = getattr(e, "message", "") or ""
    return " ".join(str(msg).split())[:300]

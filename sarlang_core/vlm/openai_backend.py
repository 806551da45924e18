"""VLMBackend over any OpenAI-compatible chat-completions endpoint (vLLM, LM Studio, OpenAI...).

The API key comes from the ``api_key`` argument, else the URL's userinfo (``http://user:KEY@host/v1``:
sent as the Bearer key, never as Basic auth), else ``OPENAI_API_KEY``, else the OS keyring (service
"sarlang-studio", user = the base URL); with none, the placeholder "EMPTY" is sent (local servers
usually need no key). Query parameters of the URL (``?key=...``) go with every request. Neither
key nor key-like parameter appears in ``identity()``, ``repr``, errors or logs (``urls.redact_url``).

Images: the first user turn carries the image as a base64 PNG data URL. Images over
``input_max_pixels`` are downscaled here first (aspect kept); ``model_input_size`` returns that
size. The server's model may resize again (Qwen rounds sides to multiples of 28): give
``size_multiple=28`` to send sides that are already multiples of 28, so that Qwen2.5-VL's
absolute-pixel boxes refer to exactly the size we report.

Retries: connection errors, timeouts, 408, 429 and 5xx are retried ``max_retries`` times with
exponential backoff (``backoff`` * 2**n s) or the server's Retry-After; 400/401/403/404 are not.
``stream`` is cancellable at any moment: the read runs in a helper thread and cancelling shuts the
socket, so a stalled or trickling server cannot hold the caller.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import queue
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, urlencode

from ..errors import CancelledError, EndpointError, RequestError
from ..progress import CancelToken, ProgressCallback, check, report
from ..urls import is_secret_param, redact_text, split_credentials
from .backend import ChatTurn, GenerationConfig, check_turns
from .openai_support import (
    KEYRING_SERVICE,
    POLL,
    Secret,
    abort_stream,
    connection_reason,
    delta_text,
    error_detail,
    fit_size,
    keyring_key,
    retry_after_seconds,
    safe_url,
    sleep_cancellable,
    store_api_key,
    to_pil,
)

__all__ = ["Completion", "OpenAIBackend", "KEYRING_SERVICE", "fit_size", "store_api_key"]

log = logging.getLogger(__name__)


class _RedactingFilter(logging.Filter):
    """Keeps URL secrets out of the HTTP libraries' own log lines ("HTTP Request: POST https://...?key=")."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:   # a malformed record: leave it to the logging machinery
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


for _name in ("httpx", "httpx2", "httpcore", "openai"):
    logging.getLogger(_name).addFilter(_RedactingFilter())


@dataclass(frozen=True)
class Completion:
    """One non-streamed answer with the token counts the server reported (None when it did not)."""
    text: str
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None

    @property
    def usage(self) -> Optional[Dict[str, int]]:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}

PLACEHOLDER_KEY = "EMPTY"
MAX_RETRY_AFTER = 120.0   # s; a server asking for longer is treated as asking for this


class OpenAIBackend:
    """A VLMBackend talking to ``base_url`` (e.g. http://127.0.0.1:8000/v1) about ``model``.

    ``load`` only checks the endpoint (nothing is loaded here); ``stream``/``generate`` work without it."""

    def __init__(self, base_url: str, model: str, *, api_key: Optional[str] = None, timeout: float = 60.0,
                 max_retries: int = 3, backoff: float = 0.5, input_max_pixels: int = 1024 * 1024,
                 size_multiple: int = 1) -> None:
        if not str(base_url or "").strip() or not str(model or "").strip():
            raise RequestError("an endpoint needs a URL and a model name")
        if timeout <= 0 or max_retries < 0 or backoff < 0 or input_max_pixels < 1 or size_multiple < 1:
            raise RequestError("timeout and input_max_pixels must be positive; max_retries, backoff >= 0")
        self.base_url, url_key, query = split_credentials(str(base_url).strip().rstrip("/"))
        self.base_url = self.base_url.rstrip("/")
        self._query = Secret(urlencode(query)) if query else None   # sent with each request, never shown
        self._url_key = Secret(url_key) if url_key else None
        self.model = str(model).strip()
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.input_max_pixels = int(input_max_pixels)
        self.size_multiple = int(size_multiple)
        self._given_key = Secret(api_key) if api_key else None
        self._key: Optional[Secret] = None    # the key in use, once the client exists
        self._client_obj = None
        self._lock = threading.Lock()
        self._loaded = False
        self.served_models: Optional[List[str]] = None   # what GET /models listed at load()

    # ---- protocol ------------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self, *, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> None:
        """Check the endpoint answers and serves ``model`` (GET /models). Servers without /models pass."""
        report(progress, "connect", 0, 1, f"contacting {self.endpoint}")
        check(cancel)
        page = self._with_retries(lambda: self._client().models.list(), cancel, allow_missing=True)
        try:
            ids = [str(m.id) for m in page.data] if page is not None else None
        except Exception as exc:  # a 200 that is not a model list: treat as "no /models"
            log.debug("%s/models is not a model list (%s)", self.endpoint, exc)
            ids = None
        self.served_models = ids
        if ids and self.model not in ids:
            shown = ", ".join(ids[:20]) + (", ..." if len(ids) > 20 else "")
            raise EndpointError(f"model '{self.model}' is not served here; available: {shown}")
        self._loaded = True
        report(progress, "connect", 1, 1, f"{self.endpoint} is ready")

    def unload(self) -> None:
        self._loaded = False
        self._drop_client()

    def identity(self) -> Dict[str, Any]:
        return {"backend": "openai", "endpoint": self.endpoint, "model": self.model}

    def model_input_size(self, width: int, height: int) -> tuple:
        """The size we send (after our downscale to ``input_max_pixels``); see the module notes."""
        return fit_size(width, height, self.input_max_pixels, self.size_multiple)

    def stream(self, image, turns: Sequence[ChatTurn], config: GenerationConfig = GenerationConfig(), *,
               cancel: Optional[CancelToken] = None) -> Iterator[str]:
        """Yield the answer's text pieces as the server sends them. Raises CancelledError when
        ``cancel`` fires (the connection is closed at once), EndpointError on failures.
        The request is validated now; nothing is sent before the first ``next()``."""
        params = self._params(image, turns, config)
        return self._stream(params, cancel)

    def generate(self, image, turns: Sequence[ChatTurn], config: GenerationConfig = GenerationConfig(), *,
                 cancel: Optional[CancelToken] = None) -> str:
        """The whole answer in one non-streaming request (cancel is checked between retries only)."""
        return self.complete(image, turns, config, cancel=cancel).text

    def complete(self, image, turns: Sequence[ChatTurn], config: GenerationConfig = GenerationConfig(), *,
                 cancel: Optional[CancelToken] = None) -> Completion:
        """Like ``generate``, with the server's token usage (for cost estimates). ``image`` may be
        None for a text-only request (an LLM judge, say)."""
        return self.send(self._params(image, turns, config), cancel=cancel)

    def send(self, params: Dict[str, Any], *, cancel: Optional[CancelToken] = None) -> Completion:
        """One non-streamed chat-completions request whose body is exactly ``params`` (model,
        messages, ...): for callers that must reproduce someone else's request field for field."""
        reply = self._with_retries(lambda: self._client().chat.completions.create(**params), cancel)
        try:
            text = reply.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError):
            raise EndpointError(f"{self.endpoint} sent a reply with no answer in it") from None
        usage = getattr(reply, "usage", None)
        pt, ct = getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)
        ok = isinstance(pt, int) and isinstance(ct, int)
        return Completion(text, pt if ok else None, ct if ok else None)

    def _query_params(self) -> Dict[str, str]:
        return dict(parse_qsl(self._query.value, keep_blank_values=True)) if self._query is not None else {}

    @property
    def endpoint(self) -> str:
        return safe_url(self.base_url + ("?" + self._query.value if self._query is not None else ""))

    def __repr__(self) -> str:
        return f"OpenAIBackend(endpoint={self.endpoint!r}, model={self.model!r})"

    # ---- key and client ------------------------------------------------------------------------
    def _resolve_key(self) -> Optional[str]:
        if self._given_key is not None:
            return self._given_key.value
        if self._url_key is not None:
            return self._url_key.value
        return os.environ.get("OPENAI_API_KEY") or keyring_key(self.base_url, self.endpoint)

    def _client(self):
        with self._lock:
            if self._client_obj is None:
                import openai
                key = self._resolve_key()
                self._key = Secret(key) if key else None
                # our own retry loop (messages, Retry-After, cancel); the SDK's is off
                self._client_obj = openai.OpenAI(base_url=self.base_url, api_key=key or PLACEHOLDER_KEY,
                                                 timeout=self.timeout, max_retries=0,
                                                 default_query=self._query_params() or None)
            return self._client_obj

    def _drop_client(self) -> None:
        with self._lock:
            client, self._client_obj = self._client_obj, None
        try:
            if client is not None:
                client.close()
        except Exception:
            log.debug("closing the HTTP client failed", exc_info=True)

    # ---- request -------------------------------------------------------------------------------
    def _params(self, image, turns: Sequence[ChatTurn], config: GenerationConfig) -> Dict[str, Any]:
        check_turns(turns)
        if not isinstance(config, GenerationConfig):
            raise RequestError("config must be a GenerationConfig")
        url = self._data_url(image) if image is not None else None
        messages: List[Dict[str, Any]] = []
        for turn in turns:
            if url is not None and turn.role == "user":
                messages.append({"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": turn.text}]})
                url = None
            else:
                messages.append({"role": turn.role, "content": turn.text})
        params: Dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": config.max_new_tokens,
                                  "temperature": config.temperature, "top_p": config.top_p}
        if config.seed is not None:
            params["seed"] = config.seed
        return params

    def _data_url(self, image) -> str:
        from PIL import Image
        img = to_pil(image)
        size = self.model_input_size(*img.size)
        if size != img.size:
            img = img.resize(size, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

    def _with_retries(self, send: Callable[[], Any], cancel: Optional[CancelToken], *, allow_missing: bool = False):
        import openai
        attempt = 0
        while True:
            check(cancel)
            try:
                return send()
            except openai.APIStatusError as e:
                err: Exception = e
                status = e.status_code
                if allow_missing and status in (404, 405, 501):
                    return None
                retryable = status in (408, 429) or status >= 500
                if status == 401:     # look the key up afresh next time (the user may store one now)
                    self._drop_client()
                wait = retry_after_seconds(e.response.headers) if retryable else None
            except openai.APIConnectionError as e:  # includes APITimeoutError
                err, retryable, wait, status = e, True, None, None
            except Exception as e:  # a 200 whose body the SDK cannot read, and the like
                raise EndpointError(f"{self.endpoint} sent a reply that is not chat-completions: "
                                    f"{self._scrub(str(e))[:300]}") from None
            if not retryable or attempt >= self.max_retries:
                raise self._error(err, attempt) from None
            wait = self.backoff * 2 ** attempt if wait is None else min(wait, MAX_RETRY_AFTER)
            log.info("%s: %s; retry %d of %d in %.1f s", self.endpoint, status or type(err).__name__,
                     attempt + 1, self.max_retries, wait)
            sleep_cancellable(wait, cancel)
            attempt += 1

    def _stream(self, params: Dict[str, Any], cancel: Optional[CancelToken]) -> Iterator[str]:
        stream = self._with_retries(lambda: self._client().chat.completions.create(**params, stream=True), cancel)
        pieces: "queue.Queue[Tuple[str, Any]]" = queue.Queue()

        def pump() -> None:
            try:
                for chunk in stream:
                    if text := delta_text(chunk):
                        pieces.put(("text", text))
                pieces.put(("end", None))
            except BaseException as e:  # handed to the caller's thread
                pieces.put(("error", e))

        threading.Thread(target=pump, name="openai-stream", daemon=True).start()
        finished = False
        try:
            while True:
                if cancel is not None and cancel.cancelled:
                    raise CancelledError()
                try:
                    kind, value = pieces.get(timeout=POLL)
                except queue.Empty:
                    continue
                if kind == "text":
                    yield value
                elif kind == "end":
                    finished = True
                    return
                else:
                    raise self._stream_error(value)
        finally:
            if not finished:   # cancelled, abandoned or failed: free the connection now
                abort_stream(stream)

    # ---- errors --------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        """``text`` (a server's message, which may echo the request) without our key or URL secrets."""
        secrets = [s.value for s in (self._key, self._given_key, self._url_key) if s is not None and s.value]
        secrets += [v for k, v in self._query_params().items() if v and is_secret_param(k)]
        for value in secrets:
            text = text.replace(value, "***")
        return redact_text(text)

    def _error(self, e: Exception, retries: int) -> EndpointError:
        import openai
        url = self.endpoint
        tries = f"{retries} retr{'y' if retries == 1 else 'ies'}"
        after = f" ({tries})" if retries else ""
        if isinstance(e, openai.APITimeoutError):
            msg = f"timed out after {self.timeout:g} s waiting for {url}{after}"
        elif isinstance(e, openai.APIConnectionError):
            msg = f"cannot reach {url}: {connection_reason(e)}{after}"
        else:
            status = getattr(e, "status_code", 0)
            detail = self._scrub(error_detail(e))
            if status == 401:
                hint = "" if self._key is not None else " (no key was found, so none was sent)"
                msg = (f"the endpoint rejected the API key (401){hint}: set OPENAI_API_KEY or store a key with "
                       f"`keyring set {KEYRING_SERVICE} {url}`")
            elif status == 403:
                msg = f"the endpoint refused access (403) for this API key at {url}: {detail}"
            elif status == 404:
                msg = (f"not found (404) at {url}: {detail}. Check the endpoint URL (OpenAI-compatible servers "
                       f"usually end in /v1) and the model name '{self.model}'")
            elif status == 429:
                msg = f"rate limited (429) after {tries} at {url}: {detail}"
            elif status >= 500:
                msg = f"the endpoint failed ({status}) at {url}{after}: {detail}"
            else:
                msg = f"the endpoint rejected the request ({status}) at {url}: {detail}"
        err = EndpointError(msg.rstrip(": "))
        err.status, err.retries = getattr(e, "status_code", None), retries  # type: ignore[attr-defined]
        return err

    def _stream_error(self, e: BaseException) -> BaseException:
        import openai
        if isinstance(e, openai.APITimeoutError):
            return EndpointError(f"the answer stalled: nothing came from {self.endpoint} for {self.timeout:g} s")
        if isinstance(e, openai.APIConnectionError):
            return EndpointError(f"the connection to {self.endpoint} was lost while streaming")
        if isinstance(e, openai.APIError):
            return EndpointError(f"{self.endpoint} reported an error while streaming: {self._scrub(error_detail(e))}")
        if isinstance(e, Exception):
            return EndpointError(f"{self.endpoint} sent an unreadable stream ({type(e).__name__})")
        return e   # KeyboardInterrupt and friends pass through



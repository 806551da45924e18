"""OpenAIBackend against a real HTTP server on 127.0.0.1 speaking the chat-completions wire format."""

from __future__ import annotations

import base64
import io
import logging
import re
import threading
import time

import keyring
import keyring.core
import numpy as np
import pytest
from keyring.backend import KeyringBackend
from PIL import Image

from sarlang_core.errors import CancelledError, EndpointError, RequestError
from sarlang_core.progress import CancelToken
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig, VLMBackend
from sarlang_core.vlm.openai_backend import KEYRING_SERVICE, OpenAIBackend, fit_size, store_api_key
from support.chat_server import ANSWER_PIECES, serve
from support.ports import dead_port

SECRET = "sk-test-0123456789abcdef"


@pytest.fixture
def endpoint():
    with serve() as ep:
        yield ep


class MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self):
        super().__init__()
        self.store = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        self.store.pop((service, username), None)


class BrokenKeyring(MemoryKeyring):
    def get_password(self, service, username):
        raise RuntimeError("the keyring is locked")

    def set_password(self, service, username, password):
        raise keyring.errors.NoKeyringError("no backend")


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """No real key, no real keyring, no proxy between us and 127.0.0.1."""
    mem = MemoryKeyring()
    monkeypatch.setattr(keyring.core, "_keyring_backend", mem)
    for var in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return mem


def image(w=40, h=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def decode_data_url(url):
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def ask(text="How many ships are there in the image?"):
    return [ChatTurn("user", text)]


# ---- the happy path ---------------------------------------------------------------------------

def test_load_then_stream_sends_what_the_paper_needs(endpoint):
    be = OpenAIBackend(endpoint.url, "sar-vlm")
    assert isinstance(be, VLMBackend)
    seen = []
    be.load(progress=seen.append)
    assert be.loaded and seen[-1].done == seen[-1].total == 1 and be.served_models == ["sar-vlm"]
    img = image()
    cfg = GenerationConfig(max_new_tokens=77, temperature=0.7, top_p=0.9, seed=42)
    pieces = list(be.stream(img, ask(), cfg))
    assert pieces == ANSWER_PIECES

    (req,) = endpoint.posts()
    assert req["path"] == "/v1/chat/completions"
    body = req["body"]
    assert body["model"] == "sar-vlm" and body["stream"] is True
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (77, 0.7, 0.9, 42)
    (msg,) = body["messages"]
    assert msg["role"] == "user"
    img_part, text_part = msg["content"]
    assert img_part["type"] == "image_url"
    assert text_part == {"type": "text", "text": "How many ships are there in the image?"}
    sent = decode_data_url(img_part["image_url"]["url"])
    assert sent.size == (40, 30) and np.array_equal(np.asarray(sent), img)
    assert req["headers"]["authorization"] == "Bearer EMPTY"   # local server, no key anywhere


def test_generate_non_streaming_and_seed_none(endpoint):
    be = OpenAIBackend(endpoint.url, "sar-vlm")
    assert be.generate(Image.fromarray(image()), ask(), GenerationConfig(seed=None)) == "".join(ANSWER_PIECES)
    body = endpoint.posts()[0]["body"]
    assert "seed" not in body and not body.get("stream")


def test_image_only_in_the_first_user_turn(endpoint):
    be = OpenAIBackend(endpoint.url, "sar-vlm")
    turns = [ChatTurn("user", "What is this?"), ChatTurn("assistant", "A port."), ChatTurn("user", "How many ships?")]
    "".join(be.stream(image(), turns))
    msgs = endpoint.posts()[0]["body"]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert isinstance(msgs[0]["content"], list)
    assert msgs[1]["content"] == "A port." and msgs[2]["content"] == "How many ships?"


def test_large_images_are_downscaled_to_the_reported_size(endpoint):
    be = OpenAIBackend(endpoint.url, "sar-vlm", input_max_pixels=6000)
    assert be.model_input_size(300, 200) == (94, 63)
    assert be.model_input_size(50, 40) == (50, 40)
    "".join(be.stream(image(300, 200), ask()))
    sent = decode_data_url(endpoint.posts()[0]["body"]["messages"][0]["content"][0]["image_url"]["url"])
    assert sent.size == (94, 63)
    assert fit_size(1000, 700, 1024 * 1024, 28) == (980, 700)
    w, h = fit_size(4000, 3000, 1024 * 1024, 28)
    assert w % 28 == 0 and h % 28 == 0 and w * h <= 1024 * 1024


def test_bad_requests_fail_before_sending(endpoint):
    be = OpenAIBackend(endpoint.url, "sar-vlm")
    with pytest.raises(RequestError, match="empty"):
        be.stream(image(), ask("   "))
    with pytest.raises(RequestError, match="8-bit"):
        be.stream(np.zeros((4, 4), np.float32), ask())
    with pytest.raises(RequestError):
        OpenAIBackend(endpoint.url, "")
    assert endpoint.requests == []


# ---- keys -------------------------------------------------------------------------------------

def test_key_order_argument_env_keyring(endpoint, isolated, monkeypatch):
    isolated.set_password(KEYRING_SERVICE, endpoint.url, "from-keyring")
    auth = lambda: endpoint.posts()[-1]["headers"]["authorization"]  # noqa: E731
    "".join(OpenAIBackend(endpoint.url, "sar-vlm").stream(None, ask()))
    assert auth() == "Bearer from-keyring"
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    "".join(OpenAIBackend(endpoint.url, "sar-vlm").stream(None, ask()))
    assert auth() == "Bearer from-env"
    "".join(OpenAIBackend(endpoint.url, "sar-vlm", api_key="from-arg").stream(None, ask()))
    assert auth() == "Bearer from-arg"


def test_a_broken_keyring_means_no_key(endpoint, monkeypatch):
    monkeypatch.setattr(keyring.core, "_keyring_backend", BrokenKeyring())
    "".join(OpenAIBackend(endpoint.url, "sar-vlm").stream(None, ask()))
    assert endpoint.posts()[0]["headers"]["authorization"] == "Bearer EMPTY"


def test_store_api_key(isolated, monkeypatch):
    store_api_key("http://127.0.0.1:9/v1/", " k1 ")
    assert isolated.store == {(KEYRING_SERVICE, "http://127.0.0.1:9/v1"): "k1"}
    with pytest.raises(RequestError):
        store_api_key("http://127.0.0.1:9/v1", "")
    monkeypatch.setattr(keyring.core, "_keyring_backend", BrokenKeyring())
    with pytest.raises(EndpointError, match="no usable OS keyring.*OPENAI_API_KEY"):
        store_api_key("http://127.0.0.1:9/v1", "k2")


def test_the_key_never_shows(endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    # the server echoes the key in its error message, as some do
    endpoint.plan = [{"status": 401, "message": f"Incorrect API key provided: {SECRET}"}]
    be = OpenAIBackend(endpoint.url, "sar-vlm", api_key=SECRET)
    with pytest.raises(EndpointError) as err:
        "".join(be.stream(image(), ask()))
    assert endpoint.posts()[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    texts = [str(err.value), repr(err.value), repr(be), str(be.identity()), str(vars(be)), caplog.text]
    assert all(SECRET not in t for t in texts)
    assert be.identity() == {"backend": "openai", "endpoint": endpoint.url, "model": "sar-vlm"}
    assert err.value.__cause__ is None


def test_credentials_in_the_url_are_not_shown():
    be = OpenAIBackend("http://user:pa55word@127.0.0.1:9/v1?api-key=zzz", "m")
    assert "pa55word" not in repr(be) and "zzz" not in str(be.identity())
    assert be.identity()["endpoint"] == "http://127.0.0.1:9/v1"


def test_a_key_in_the_url_is_used_as_the_key_and_never_shown(endpoint, caplog):
    caplog.set_level(logging.DEBUG)
    url = endpoint.url.replace("http://", f"http://user:{SECRET}@") + "?api-version=2024&key=qs-9876543210"
    endpoint.plan = [{}, {"status": 500, "echo_headers": True}]
    be = OpenAIBackend(url, "sar-vlm", backoff=0.01, max_retries=0)
    assert be.generate(None, ask()) == "".join(ANSWER_PIECES)
    sent = endpoint.posts()[0]
    # the userinfo becomes the Bearer key (not Basic auth); the query goes with the request
    assert sent["headers"]["authorization"] == f"Bearer {SECRET}"
    assert "key=qs-9876543210" in sent["path"] and "api-version=2024" in sent["path"]
    with pytest.raises(EndpointError) as err:
        be.generate(None, ask())
    assert "Bearer ***" in str(err.value)           # the server echoed our headers back
    basic = base64.b64encode(f"user:{SECRET}".encode()).decode()
    texts = [str(err.value), repr(be), str(be.identity()), str(vars(be)), caplog.text]
    for secret in (SECRET, basic, "qs-9876543210"):
        assert all(secret not in t for t in texts), secret
    assert be.endpoint == endpoint.url + "?api-version=2024"


# ---- failures ---------------------------------------------------------------------------------

def test_401_is_not_retried_and_says_what_to_do(endpoint):
    endpoint.plan = [{"status": 401}] * 3
    be = OpenAIBackend(endpoint.url, "sar-vlm", backoff=0.01)
    with pytest.raises(EndpointError) as err:
        be.generate(image(), ask())
    msg = str(err.value)
    assert "the endpoint rejected the API key (401)" in msg and "OPENAI_API_KEY" in msg
    assert f"`keyring set sarlang-studio {endpoint.url}`" in msg
    assert len(endpoint.posts()) == 1 and err.value.status == 401


def test_after_a_401_the_key_is_looked_up_again(endpoint, isolated):
    endpoint.plan = [{"status": 401}]
    be = OpenAIBackend(endpoint.url, "sar-vlm")
    with pytest.raises(EndpointError, match="no key was found"):
        be.generate(image(), ask())
    isolated.set_password(KEYRING_SERVICE, endpoint.url, "new-key")   # the user follows the advice
    assert be.generate(image(), ask()) == "".join(ANSWER_PIECES)
    assert endpoint.posts()[-1]["headers"]["authorization"] == "Bearer new-key"


@pytest.mark.parametrize("status, words", [(400, "rejected the request (400)"), (403, "refused access (403)"),
                                           (404, "not found (404)")])
def test_client_errors_are_not_retried(endpoint, status, words):
    endpoint.plan = [{"status": status, "message": "no such thing"}] * 3
    with pytest.raises(EndpointError, match=re.escape(words)) as err:
        "".join(OpenAIBackend(endpoint.url, "sar-vlm", backoff=0.01).stream(image(), ask()))
    assert "no such thing" in str(err.value) and len(endpoint.posts()) == 1


def test_429_respects_retry_after(endpoint):
    endpoint.plan = [{"status": 429, "headers": [("Retry-After", "1")]}]
    be = OpenAIBackend(endpoint.url, "sar-vlm", backoff=0.01)
    t0 = time.monotonic()
    assert "".join(be.stream(image(), ask())) == "".join(ANSWER_PIECES)
    assert time.monotonic() - t0 >= 0.95          # not the 0.01 s backoff
    assert len(endpoint.posts()) == 2


def test_429_gives_up_after_max_retries(endpoint):
    endpoint.plan = [{"status": 429}] * 5
    with pytest.raises(EndpointError, match=r"rate limited \(429\) after 2 retries"):
        OpenAIBackend(endpoint.url, "sar-vlm", max_retries=2, backoff=0.01).generate(image(), ask())
    assert len(endpoint.posts()) == 3


def test_500_then_success(endpoint):
    endpoint.plan = [{"status": 500}, {"status": 503}]
    be = OpenAIBackend(endpoint.url, "sar-vlm", max_retries=3, backoff=0.01)
    assert "".join(be.stream(image(), ask())) == "".join(ANSWER_PIECES)
    assert len(endpoint.posts()) == 3


def test_persistent_5xx_names_the_status(endpoint):
    endpoint.plan = [{"status": 502}] * 3
    with pytest.raises(EndpointError, match=r"failed \(502\) at .*/v1 \(1 retry\)"):
        OpenAIBackend(endpoint.url, "sar-vlm", max_retries=1, backoff=0.01).generate(image(), ask())


def test_timeout(endpoint):
    endpoint.plan = [{"delay": 2.0}] * 2
    be = OpenAIBackend(endpoint.url, "sar-vlm", timeout=0.25, max_retries=1, backoff=0.01)
    t0 = time.monotonic()
    with pytest.raises(EndpointError, match=r"timed out after 0.25 s") as err:
        "".join(be.stream(image(), ask()))
    assert time.monotonic() - t0 < 3.5 and endpoint.url in str(err.value)   # 2 x 0.25 s, not 2 x 2 s
    assert len(endpoint.posts()) == 2


def test_unreachable_port():
    with dead_port() as port:
        url = f"http://127.0.0.1:{port}/v1"
        be = OpenAIBackend(url, "sar-vlm", max_retries=1, backoff=0.01)
        with pytest.raises(EndpointError, match=f"cannot reach {url}: connection refused"):
            be.load()
        assert not be.loaded
        with pytest.raises(EndpointError, match="cannot reach"):
            "".join(be.stream(image(), ask()))


def test_load_names_what_is_served(endpoint):
    endpoint.models = ["qwen2.5-vl-7b", "sar-lora"]
    with pytest.raises(EndpointError, match="model 'x' is not served here; available: qwen2.5-vl-7b, sar-lora"):
        OpenAIBackend(endpoint.url, "x").load()


def test_load_passes_on_servers_without_models(endpoint):
    endpoint.models = None
    be = OpenAIBackend(endpoint.url, "anything", backoff=0.01)
    be.load()
    assert be.loaded and be.served_models is None
    be.unload()
    assert not be.loaded
    assert "".join(be.stream(image(), ask())) == "".join(ANSWER_PIECES)   # a fresh client after unload


def test_error_event_in_the_stream(endpoint):
    endpoint.plan = [{"pieces": ["par", "tial"], "error_event": "the model crashed"}]
    got = []
    with pytest.raises(EndpointError, match="error while streaming: the model crashed"):
        for p in OpenAIBackend(endpoint.url, "sar-vlm").stream(image(), ask()):
            got.append(p)
    assert got == ["par", "tial"]


# ---- cancel -----------------------------------------------------------------------------------

def test_cancel_closes_a_stalled_stream_promptly(endpoint):
    endpoint.plan = [{"pieces": ["one ", "two ", "never"], "stall_after": 2}]
    token = CancelToken()
    it = OpenAIBackend(endpoint.url, "sar-vlm", timeout=30).stream(image(), ask(), cancel=token)
    assert [next(it), next(it)] == ["one ", "two "]
    threading.Timer(0.2, token.cancel).start()
    t0 = time.monotonic()
    with pytest.raises(CancelledError):
        next(it)
    assert time.monotonic() - t0 < 10.0          # promptly (0.2 s), not at the 30 s timeout
    assert endpoint.disconnected.wait(2.0)     # the server saw the connection go


def test_abandoning_the_generator_closes_the_connection(endpoint):
    endpoint.plan = [{"pieces": ["one ", "two"], "stall_after": 1}]
    it = OpenAIBackend(endpoint.url, "sar-vlm", timeout=30).stream(image(), ask())
    assert next(it) == "one "
    it.close()
    assert endpoint.disconnected.wait(2.0)


def test_cancel_before_start_sends_nothing(endpoint):
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        list(OpenAIBackend(endpoint.url, "sar-vlm").stream(image(), ask(), cancel=token))
    with pytest.raises(CancelledError):
        OpenAIBackend(endpoint.url, "sar-vlm").load(cancel=token)
    assert endpoint.requests == []


def test_cancel_during_retry_wait(endpoint):
    endpoint.plan = [{"status": 429, "headers": [("Retry-After", "30")]}]
    token = CancelToken()
    threading.Timer(0.3, token.cancel).start()
    t0 = time.monotonic()
    with pytest.raises(CancelledError):
        OpenAIBackend(endpoint.url, "sar-vlm").generate(image(), ask(), cancel=token)
    assert time.monotonic() - t0 < 10.0 and len(endpoint.posts()) == 1   # 0.3 s, not the 30 s Retry-After

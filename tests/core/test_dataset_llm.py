"""generate_from_optical against the real chat-completions test server on 127.0.0.1."""

import base64
import io
import json
import time

import pytest
from PIL import Image

from sarlang_core.datasets.llm_generation import (
    DEFAULT_PROMPTS,
    PromptSet,
    cost_of,
    generate_from_optical,
    parse_inquiries,
)
from sarlang_core.datasets.records import ImageRecord
from sarlang_core.vlm.openai_backend import OpenAIBackend
from support import chat_server
from support.chat_server import serve

QA = json.dumps([
    {"question": "What shape is the main building?", "answer": "rectangular", "category": "shape"},
    {"question": "What is the dominant land cover?", "answer": "farmland", "category": "Land Cover"},
    {"question": "Is this a port?", "answer": "yes", "category": "misc"},
])


def _pairs(tmp_path, n):
    out = []
    for i in range(n):
        p = tmp_path / f"opt{i}.png"
        Image.new("RGB", (32, 24), (i * 40, 100, 200)).save(p)
        out.append(ImageRecord(id=f"sar{i}.tif", path=str(tmp_path / f"sar{i}.tif"), width=32, height=24,
                               optical_path=str(p)))
    return out


def _answers(n):
    """Server plan for n pairs asked one at a time: concise, detailed, inquiries per pair."""
    plan = []
    for i in range(n):
        plan += [{"pieces": [f"A farm {i}."]}, {"pieces": [f"A detailed farm {i} with red roofs."]},
                 {"pieces": ["```json\n" + QA + "\n```"]}]
    return plan


def _backend(ep, model="sar-vlm", **kw):
    return OpenAIBackend(ep.url, model, api_key="k", max_retries=0, timeout=10, **kw)


def _prompt_text(body):
    return body["messages"][0]["content"][1]["text"]


def test_items_per_pair_types_and_image(tmp_path):
    pairs = _pairs(tmp_path, 2)
    with serve() as ep:
        ep.plan = _answers(2)
        s = generate_from_optical(pairs, _backend(ep), cache_dir=tmp_path / "c", concurrency=1)
        posts = ep.posts()
    assert s.problems == [] and s.requests == 6 and s.cache_hits == 0
    assert [(it.image_id, it.type) for it in s.items] == [
        (f"sar{i}.tif", t) for i in range(2)
        for t in ("caption_concise", "caption_detailed", "general", "general", "general")]
    assert s.items[0].answer == "A farm 0." and s.items[0].source == "llm"
    gen = [it for it in s.items if it.type == "general"]
    assert [it.meta["category"] for it in gen[:3]] == ["shape", "land cover", "other"]
    assert s.items[1].meta["colour_words"] == ["red"]
    m = s.items[0].meta
    assert m["model"] == "sar-vlm" and m["cached"] is False and m["prompt_id"].startswith(DEFAULT_PROMPTS.id)
    assert m["usage"]["estimated"] is True and s.estimated_tokens
    # the optical image travels as a PNG data URL with the prompt; the prompt warns about colours
    part = posts[0]["body"]["messages"][0]["content"][0]
    assert part["type"] == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1])))
    assert img.size == (32, 24) and img.convert("RGB").getpixel((0, 0)) == (0, 100, 200)
    assert "SAR" in _prompt_text(posts[2]["body"]) and "colour" in _prompt_text(posts[2]["body"])
    assert posts[0]["body"]["max_tokens"] == 300


def test_cache_second_run_makes_no_requests(tmp_path):
    pairs = _pairs(tmp_path, 2)
    with serve() as ep:
        ep.plan = _answers(2)
        first = generate_from_optical(pairs, _backend(ep), cache_dir=tmp_path / "c", concurrency=3)
        n = len(ep.posts())
        second = generate_from_optical(pairs, _backend(ep), cache_dir=tmp_path / "c", concurrency=3)
        assert len(ep.posts()) == n == 6
        # another model name is another cache key
        ep.plan = _answers(2)
        generate_from_optical(pairs[:1], _backend(ep, model="other"), cache_dir=tmp_path / "c", concurrency=1)
        assert len(ep.posts()) == 9
    assert second.requests == 0 and second.cache_hits == 6 and second.cost_usd == 0
    key = lambda it: (it.image_id, it.type, it.question, it.answer, it.meta.get("category"))  # noqa: E731
    assert first.items and [key(i) for i in first.items] == [key(i) for i in second.items]
    assert all(i.meta["cached"] for i in second.items) and not any(i.meta["cached"] for i in first.items)
    assert list((tmp_path / "c").rglob(".tmp-*")) == [] and len(list((tmp_path / "c").rglob("*.json"))) == 9


def test_concurrency_bound(tmp_path, monkeypatch):
    pairs = _pairs(tmp_path, 4)
    state = {"now": 0, "max": 0}
    orig = chat_server.Handler.do_POST

    def counting(self):
        ep = self.server.ep
        with ep.lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        try:
            orig(self)
        finally:
            with ep.lock:
                state["now"] -= 1

    monkeypatch.setattr(chat_server.Handler, "do_POST", counting)
    with serve() as ep:
        ep.plan = [{"delay": 0.15, "pieces": [QA]} for _ in range(12)]
        t0 = time.monotonic()
        s = generate_from_optical(pairs, _backend(ep), cache_dir=tmp_path / "c", concurrency=3)
        took = time.monotonic() - t0
    assert len(ep.posts()) == 12 and s.requests == 12
    assert state["max"] == 3          # bound reached and never exceeded
    assert took >= 4 * 0.15 * 0.9     # 12 requests / 3 at a time


def test_server_error_on_one_pair_is_a_problem(tmp_path):
    pairs = _pairs(tmp_path, 3)
    plan = _answers(3)
    plan[3] = {"status": 500, "message": "boom"}      # pair 1, concise caption
    with serve() as ep:
        ep.plan = plan
        s = generate_from_optical(pairs, _backend(ep), cache_dir=tmp_path / "c", concurrency=1)
    assert len(s.problems) == 1
    p = s.problems[0]
    assert p["image_id"] == "sar1.tif" and p["kind"] == "concise" and "500" in p["error"]
    types = [(it.image_id, it.type) for it in s.items]
    assert ("sar1.tif", "caption_concise") not in types and ("sar1.tif", "caption_detailed") in types
    assert sum(1 for t in types if t[0] in ("sar0.tif", "sar2.tif")) == 10
    # the failed answer was not cached: a re-run asks only for it
    with serve() as ep:
        s2 = generate_from_optical(pairs, _backend(ep), cache_dir=tmp_path / "c", concurrency=1)
        assert len(ep.posts()) == 1
    assert s2.problems == [] and s2.cache_hits == 8


def test_malformed_inquiries_keep_captions(tmp_path):
    pairs = _pairs(tmp_path, 2)
    plan = _answers(2)
    plan[2] = {"pieces": ['Sure! [{"question": "What shape', " is it?\", \"answer\": oops}"]}
    plan[5] = {"pieces": ['Here you go: {"questions": ' + QA + "} hope it helps"]}   # wrapped: fine
    with serve() as ep:
        ep.plan = plan
        s = generate_from_optical(pairs, _backend(ep), cache_dir=tmp_path / "c", concurrency=1)
    assert [(p["image_id"], p["kind"]) for p in s.problems] == [("sar0.tif", "inquiries")]
    assert "unusable inquiries" in s.problems[0]["error"]
    assert [it.type for it in s.items if it.image_id == "sar0.tif"] == ["caption_concise", "caption_detailed"]
    assert [it.type for it in s.items if it.image_id == "sar1.tif"].count("general") == 3


def test_cost_from_server_usage(tmp_path, monkeypatch):
    orig = chat_server.Handler._json

    def with_usage(self, status, payload, headers=()):
        if payload.get("object") == "chat.completion":
            payload["usage"] = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}
        orig(self, status, payload, headers)

    monkeypatch.setattr(chat_server.Handler, "_json", with_usage)
    pairs = _pairs(tmp_path, 2)
    with serve() as ep:
        ep.models = ["gpt-4o-mini"]
        ep.plan = _answers(2)
        s = generate_from_optical(pairs, _backend(ep, model="gpt-4o-mini"), cache_dir=tmp_path / "c",
                                  concurrency=2)
        again = generate_from_optical(pairs, _backend(ep, model="gpt-4o-mini"), cache_dir=tmp_path / "c")
    assert s.prompt_tokens == 6000 and s.completion_tokens == 1200 and not s.estimated_tokens
    assert s.cost_usd == pytest.approx((6000 * 0.15 + 1200 * 0.60) / 1e6)
    assert s.items[0].meta["usage"] == {"prompt_tokens": 1000, "completion_tokens": 200}
    assert again.cost_usd == 0 and again.cached_cost_usd == pytest.approx(s.cost_usd)
    assert cost_of("gpt-4o-2024-08-06", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert cost_of("llava", 10, 10) is None


def test_estimated_cost_and_unpriced(tmp_path):
    pairs = _pairs(tmp_path, 1)
    with serve() as ep:
        ep.plan = _answers(1)
        s = generate_from_optical(pairs, _backend(ep, model="gpt-4o"), cache_dir=tmp_path / "c")
        u = generate_from_optical(pairs, _backend(ep, model="local"), cache_dir=tmp_path / "c2")
    assert s.estimated_tokens and s.prompt_tokens > 100 and s.cost_usd > 0
    assert u.unpriced_models == ["local"] and u.cost_usd == 0


def test_prompt_set_roundtrip_and_missing_optical(tmp_path):
    ps = PromptSet(id="mine", n_inquiries=2, concise="Say one thing.")
    ps.save(tmp_path / "p.json")
    back = PromptSet.load(tmp_path / "p.json")
    assert back == ps and "2 different" in back.text("inquiries")
    assert back.prompt_id("concise") != DEFAULT_PROMPTS.prompt_id("concise")
    rec = ImageRecord(id="x", path="x.tif", width=1, height=1)
    with serve() as ep:
        s = generate_from_optical([rec], _backend(ep), cache_dir=tmp_path / "c")
        assert ep.posts() == []
    assert s.items == [] and s.problems[0]["image_id"] == "x"


def test_parse_inquiries_lenient():
    assert parse_inquiries('[{"question": "Q?", "answer": 3, "category": "pattern"}, 5, {"question": ""}]') == [
        {"question": "Q?", "answer": "3", "category": "pattern"}]
    for bad in ("no json", "[]", '[{"q": 1}]', '{"a": 1}'):
        with pytest.raises(ValueError):
            parse_inquiries(bad)


def test_parse_inquiries_reports_a_non_syntax_json_error_as_valueerror():
    # Python refuses integers longer than 4300 digits with a plain ValueError (no ``.msg``)
    with pytest.raises(ValueError, match="the JSON array does not parse"):
        parse_inquiries("answer: [" + "1" * 5000 + "]")


def test_cancel_keeps_answers_cached(tmp_path):
    from sarlang_core.errors import CancelledError
    from sarlang_core.progress import CancelToken
    pairs = _pairs(tmp_path, 3)
    token = CancelToken()

    def progress(p):
        if p.done >= 2:
            token.cancel()

    with serve() as ep:
        ep.plan = _answers(3)
        with pytest.raises(CancelledError):
            generate_from_optical(pairs, _backend(ep), cache_dir=tmp_path / "c", concurrency=1,
                                  progress=progress, cancel=token)
        n = len(ep.posts())
        assert n < 9
        ep.plan = _answers(3)[n:]
        s = generate_from_optical(pairs, _backend(ep), cache_dir=tmp_path / "c", concurrency=1)
    assert s.cache_hits == n and s.requests == 9 - n and s.problems == []

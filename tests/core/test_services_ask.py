"""services.ask, the one path for asking about a scene (CLI and GUI), against a real
chat-completions server on 127.0.0.1 and a synthetic GeoTIFF; services.models' registry view."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from sarlang_core.errors import ModelError, RequestError
from sarlang_core.services import SceneSession
from sarlang_core.services.ask import (
    AskRequest,
    Conversation,
    action_request,
    ask_scene,
    check_request,
    geojson_of,
    prompt_for,
    save_geojson,
    scene_image,
)
from sarlang_core.services.models import GenerationConfig, open_backend, registered_models
from sarlang_core.vlm.prompts import caption_prompt
from support.chat_server import serve

SHIP = ['{"bbox_2d": [10, 20, 30, 40], ', '"label": "ship"}']


@pytest.fixture
def session(sar_scene):
    s = SceneSession.open(sar_scene[0])
    yield s
    s.close()


@pytest.fixture
def endpoint(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with serve() as ep:
        yield ep


def sent_image(post) -> np.ndarray:
    url = [c["image_url"]["url"] for c in post["body"]["messages"][-1]["content"] if c["type"] == "image_url"][0]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_prompts_follow_the_paper():
    assert prompt_for(caption_prompt()) == caption_prompt()
    assert prompt_for(" Is there a ship? ") == "Question: Is there a ship?. Answer the question concisely."
    assert AskRequest("How many?", prompt="raw").model_prompt == "raw"


@pytest.mark.parametrize("kwargs, needle", [
    ({"question": "  "}, "empty"),
    ({"question": "q", "source": "region"}, "draw a region"),
    ({"question": "q", "source": "viewport"}, "rectangle"),
    ({"question": "q", "source": "everywhere"}, "image source"),
    ({"question": "q", "max_pixels": 0}, "pixel budget"),
])
def test_bad_requests_are_refused_before_any_work(kwargs, needle):
    with pytest.raises(RequestError, match=needle):
        AskRequest(**kwargs)


def test_a_region_outside_the_scene_is_refused(session):
    req = AskRequest("q", source="region", rect=(5000, 5000, 10, 10))
    with pytest.raises(RequestError, match="outside the scene"):
        check_request(req, session.scene)
    assert check_request(AskRequest("q", source="region", rect=(-10, 500, 40, 40)), session.scene) == (0, 500, 30, 12)


def test_the_image_keeps_to_the_pixel_budget(session):
    img = scene_image(session, AskRequest("q", max_pixels=128 * 128))
    assert img.image.width * img.image.height <= 128 * 128 and img.crop == (0.0, 0.0, 512.0, 512.0)
    region = scene_image(session, AskRequest("q", source="region", rect=(100, 50, 200, 100)))
    assert region.image.size == (200, 100) and region.crop == (100.0, 50.0, 200.0, 100.0)


def test_ask_scene_loads_streams_and_puts_boxes_on_the_scene(session, endpoint, tmp_path):
    endpoint.plan.append({"pieces": SHIP})
    backend = open_backend("sar-vlm", endpoint=endpoint.url, api_key="EMPTY")
    assert not backend.loaded
    conv = Conversation(str(session.scene.path), AskRequest("q").pipeline)
    seen = []
    req = AskRequest("Where is the ship?", source="region", rect=(100, 50, 200, 100),
                     config=GenerationConfig(max_new_tokens=16))
    pieces = list(ask_scene(backend, session, conv, req, on_image=seen.append))
    assert "".join(pieces) == "".join(SHIP) and backend.loaded
    post = endpoint.posts()[-1]
    assert (sent_image(post) == np.asarray(seen[0].image)).all() and post["body"]["max_tokens"] == 16
    ex = conv.exchanges[-1]
    assert ex.question == "Question: Where is the ship?. Answer the question concisely."
    box = [b for b in ex.boxes if b.kind == "box"][0]
    assert box.box == pytest.approx((110.0, 70.0, 130.0, 90.0)) and box.label == "ship"
    fc = json.loads(save_geojson(tmp_path / "b.geojson", ex.boxes, session.scene).read_text())
    assert fc == geojson_of(ex.boxes, session.scene) and fc["features"][0]["properties"]["label"] == "ship"


def test_refer_names_the_region_in_the_pixels_of_the_image_sent():
    whole = action_request("refer", "", source="region", scene_size=(512, 512), region_rect=(100, 50, 20, 10))
    assert whole.source == "scene" and whole.rect is None
    assert whole.question == "What is the object present in the area [100.0, 50.0, 20.0, 10.0]?"
    view = action_request("refer", "", source="viewport", scene_size=(512, 512), view_rect=(64, 32, 256, 256),
                          region_rect=(100, 50, 20, 10))
    assert view.source == "viewport" and view.rect == (64.0, 32.0, 256.0, 256.0)
    assert "[36.0, 18.0, 20.0, 10.0]" in view.prompt
    with pytest.raises(RequestError, match="draw a region"):
        action_request("refer", "", source="scene", scene_size=(512, 512))
    count = action_request("count", "ships", source="scene", scene_size=(512, 512))
    assert count.prompt == "Question: How many ships are there in the image?. Answer the question concisely."


def test_registered_models_and_their_labels(tmp_path):
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps({"models": [{"name": "a", "path": "m"}, {"name": "b", "path": "m", "adapter": "x"}]}))
    assert registered_models(str(reg)) == [("a", "a"), ("b + adapter", "b")]
    with pytest.raises(ModelError, match="not found"):
        registered_models(str(tmp_path / "none.json"))


def test_a_stop_between_pieces_marks_the_answer_stopped(session, endpoint):
    """The GUI stops reading when Stop lands between two pieces: the exchange keeps what was said
    and says it was stopped (it was marked complete when the reader closed the stream)."""
    endpoint.plan.append({"pieces": ["one ", "two ", "three"]})
    backend = open_backend("sar-vlm", endpoint=endpoint.url, api_key="EMPTY")
    conv = Conversation(str(session.scene.path), AskRequest("q").pipeline)
    stream = ask_scene(backend, session, conv, AskRequest("Describe the scene."))
    assert next(stream) == "one "
    stream.close()
    ex = conv.exchanges[-1]
    assert ex.answer == "one " and ex.stopped and ex.finished

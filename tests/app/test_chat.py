"""The chat panel end to end, offscreen, against a real chat-completions server on 127.0.0.1:
asking, streaming into the panel, stop, a drawn region, and boxes drawn from an answer."""

import json

import pytest
from gui_helpers import open_and_wait, screenshot, settle
from PySide6.QtCore import QRectF

from app.main import sample_scene_path
from sarlang_core.vlm.openai_backend import OpenAIBackend
from support.chat_server import serve

BOX_ANSWER = ['There is one ship: ```json\n[{"bbox_2d": [100, 200, 164, 232], ', '"label": "ship"}]\n``` ',
              "in the top left of the image."]


@pytest.fixture
def chat_window(qtbot, window, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    open_and_wait(qtbot, window, sample_scene_path())
    settle(qtbot, window)
    with serve() as ep:
        backend = OpenAIBackend(ep.url, "sar-vlm", api_key="EMPTY", timeout=10, max_retries=0)
        with qtbot.waitSignal(window.chat.controller.loaded, timeout=20000):
            window.chat.load_backend(backend)
        yield window, ep


def ask(qtbot, win, text, source="scene"):
    panel = win.chat_panel
    panel.source.setCurrentIndex(panel.source.findData(source))
    panel.input.setText(text)
    with qtbot.waitSignal(win.chat.controller.finished, timeout=30000) as blocker:
        panel.ask_button.click()
    return blocker.args[0]


def test_answer_streams_into_the_panel_with_the_image_sent(qtbot, chat_window):
    win, ep = chat_window
    pieces = []
    win.chat.controller.piece.connect(lambda t, _ts: pieces.append(t))
    ex = ask(qtbot, win, "How many ships are there in the image?")
    assert pieces == ["A ship ", "is moored ", "at the pier."]
    assert ex.answer == "A ship is moored at the pier." and not ex.error
    body = ep.posts()[-1]["body"]
    assert body["stream"] is True and body["model"] == "sar-vlm"
    text = [c["text"] for c in body["messages"][-1]["content"] if c["type"] == "text"][0]
    assert text == "Question: How many ships are there in the image?. Answer the question concisely."
    html = win.chat_panel.view.toHtml()
    assert "A ship is moored at the pier." in html and "data:image/png;base64" in html
    assert ex.crop == (0.0, 0.0, 1024.0, 1024.0) and ex.backend["endpoint"] == ep.url
    assert max(win.chat._t_piece) < 1000
    screenshot(win, "chat_answer")


def test_region_question_sends_the_region_and_draws_boxes(qtbot, chat_window, tmp_path):
    win, ep = chat_window
    win.compare.start_region(QRectF(256, 512, 256, 128))
    ep.plan.append({"pieces": BOX_ANSWER})
    ex = ask(qtbot, win, "Where is the ship?", source="region")
    assert ex.source == "region" and ex.crop == (256.0, 512.0, 256.0, 128.0)
    # Qwen2.5-VL convention: input pixels of the 256 x 128 crop sent at full resolution
    ship = [b for b in ex.boxes if b.kind == "box"][0]
    assert ship.label == "ship"
    assert ship.box == pytest.approx((356.0, 712.0, 420.0, 744.0))
    assert any(b.kind == "position" and b.label == "top left" for b in ex.boxes)
    overlay_items = win.chat.overlays[1].items
    assert len(overlay_items) >= 2
    screenshot(win, "chat_boxes")
    out = tmp_path / "boxes.geojson"
    win.chat.export_geojson(str(out))
    fc = json.loads(out.read_text())
    assert fc["type"] == "FeatureCollection" and fc["features"][0]["properties"]["label"] == "ship"
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert 2 < lon < 4 and 50 < lat < 52          # the sample scene sits in UTM 31N
    md = tmp_path / "chat.md"
    win.chat.export_transcript(str(md))
    text = md.read_text()
    assert "Where is the ship?" in text and "refined" in text.lower() and ep.url in text


def test_stop_keeps_what_was_said(qtbot, chat_window):
    win, ep = chat_window
    ep.plan.append({"pieces": ["one ", "two ", "three"], "stall_after": 1})
    stopped = []
    win.chat.controller.piece.connect(lambda t, _ts: (stopped.append(t), win.chat_panel.stop_button.click()))
    win.chat_panel.input.setText("Describe the scene")
    win.chat_panel.ask_button.click()
    qtbot.waitUntil(lambda: not win.chat.controller.busy, timeout=20000)
    ex = win.chat.conversation.exchanges[-1]
    assert ex.answer.startswith("one") and ex.stopped
    assert win.chat_panel.ask_button.isEnabled()


def test_bad_requests_are_explained_and_the_app_stays_up(qtbot, chat_window):
    win, ep = chat_window
    win.chat_panel.input.setText("   ")
    win.chat_panel.ask_button.click()
    assert "empty" in win.chat.panel.model_status.text()
    win.chat_panel.source.setCurrentIndex(win.chat_panel.source.findData("region"))
    win.chat_panel.input.setText("What is here?")
    win.chat_panel.ask_button.click()
    assert "region" in win.chat.panel.model_status.text().lower()
    ep.plan.append({"status": 401, "message": "bad key"})
    win.chat_panel.source.setCurrentIndex(0)
    with qtbot.waitSignal(win.chat.controller.failed, timeout=20000) as blocker:
        win.chat_panel.ask_button.click()
    assert "401" in blocker.args[0]
    assert "401" in win.chat_panel.view.toPlainText()
    assert win.session is not None and win.chat_panel.ask_button.isEnabled()


@pytest.fixture
def tiny_model(tiny_qwen):
    """The session's tiny Qwen2.5-VL folder (tests/support/tiny_models.py)."""
    return tiny_qwen


def test_local_model_answers_in_the_panel(qtbot, window, tiny_model):
    from sarlang_core.vlm.local import LocalBackend

    open_and_wait(qtbot, window, sample_scene_path())
    settle(qtbot, window)
    with qtbot.waitSignal(window.chat.controller.loaded, timeout=60000) as blocker:
        window.chat.load_backend(LocalBackend(tiny_model))
    assert blocker.args[0]["family"] == "qwen2_5_vl"
    assert "tiny-qwen2.5-vl" in window.chat_panel.model_status.text()
    window.chat_panel.max_tokens.setValue(8)
    ex = ask(qtbot, window, "How many ships are there in the image?", source="viewport")
    assert ex.answer and ex.backend["backend"] == "local"
    # the model saw the viewport rendered through the Pipeline, resized by its processor
    assert ex.input_size[0] % 28 == 0 and ex.input_size[1] % 28 == 0
    assert ex.answer[:10] in window.chat_panel.view.toPlainText()


def test_onnx_export_answers_in_the_panel_and_says_its_provider(qtbot, window, tiny_qwen_onnx):
    from sarlang_core.services.models import backend_for_choice

    open_and_wait(qtbot, window, sample_scene_path())
    settle(qtbot, window)
    with qtbot.waitSignal(window.chat.controller.loaded, timeout=60000) as blocker:
        window.chat.load_backend(backend_for_choice(str(tiny_qwen_onnx)))   # as "Model folder…" does
    ident = blocker.args[0]
    assert ident["backend"] == "onnxruntime"
    status = window.chat_panel.model_status.text()
    assert f"ONNX Runtime · {ident['device'].upper()} float32" in status
    if ident["provider_note"]:
        assert "CUDA provider did not start" in status
    window.chat_panel.max_tokens.setValue(8)
    ex = ask(qtbot, window, "How many ships are there in the image?", source="viewport")
    assert ex.answer and not ex.error and ex.backend["backend"] == "onnxruntime"
    assert ex.answer[:10] in window.chat_panel.view.toPlainText()
    screenshot(window, "chat_onnx")


def _sent_image(post):
    """The PNG a chat-completions request carried, as pixels."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    url = [c["image_url"]["url"] for c in post["body"]["messages"][-1]["content"] if c["type"] == "image_url"][0]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_cli_and_gui_take_one_ask_path(qtbot, chat_window, tmp_path, capsys):
    """The same question about the same region, asked in the GUI and with `sarlang-cli ask`: the
    same image and prompt reach the model, and the answer gives the same boxes and GeoJSON."""
    from sarlang_core.cli import main as cli_main

    win, ep = chat_window
    win.compare.start_region(QRectF(256, 512, 256, 128))
    ep.plan.append({"pieces": BOX_ANSWER})
    gui_ex = ask(qtbot, win, "Where is the ship?", source="region")
    win.chat.export_geojson(str(tmp_path / "gui.geojson"))
    win.chat.export_transcript(str(tmp_path / "gui.json"))
    gui_post = ep.posts()[-1]

    recipe = tmp_path / "pipeline.json"
    recipe.write_text(win.renderer.pipeline.to_json())
    ep.plan.append({"pieces": BOX_ANSWER})
    rc = cli_main(["ask", str(sample_scene_path()), "Where is the ship?", "--endpoint", ep.url, "--model", "sar-vlm",
                   "--region", "256,512,256,128", "--pipeline", str(recipe),
                   "--max-new-tokens", str(win.chat_panel.max_tokens.value()),
                   "--geojson", str(tmp_path / "cli.geojson"), "--transcript", str(tmp_path / "cli.json")])
    assert rc == 0, capsys.readouterr().err
    cli_post = ep.posts()[-1]

    gui_img, cli_img = _sent_image(gui_post), _sent_image(cli_post)
    assert gui_img.shape == cli_img.shape == (128, 256, 3)
    assert (gui_img == cli_img).all()
    assert gui_post["body"]["messages"] == cli_post["body"]["messages"]
    assert gui_post["body"]["max_tokens"] == cli_post["body"]["max_tokens"]

    cli_ex = json.loads((tmp_path / "cli.json").read_text())["exchanges"][-1]
    gui_ex_saved = json.loads((tmp_path / "gui.json").read_text())["exchanges"][-1]
    for key in ("question", "answer", "source", "crop", "input_size", "boxes"):
        assert cli_ex[key] == gui_ex_saved[key], key
    assert [b["box"] for b in cli_ex["boxes"]] == [list(b.box) for b in gui_ex.boxes]
    gui_fc = json.loads((tmp_path / "gui.geojson").read_text())
    assert gui_fc["features"] and gui_fc == json.loads((tmp_path / "cli.geojson").read_text())


def test_tiny_model_answers_the_cli_as_it_answers_the_panel(qtbot, window, tiny_model, tmp_path, capsys):
    """Greedy decoding on the same image and prompt: `sarlang-cli ask` about the viewport's rectangle
    gets the answer the panel got about the viewport."""
    from sarlang_core.cli import main as cli_main
    from sarlang_core.vlm.local import LocalBackend

    open_and_wait(qtbot, window, sample_scene_path())
    settle(qtbot, window)
    with qtbot.waitSignal(window.chat.controller.loaded, timeout=60000):
        window.chat.load_backend(LocalBackend(tiny_model))
    window.chat_panel.max_tokens.setValue(6)
    gui_ex = ask(qtbot, window, "Is there a ship?", source="viewport")
    recipe = tmp_path / "pipeline.json"
    recipe.write_text(window.renderer.pipeline.to_json())
    x, y, w, h = gui_ex.crop
    rc = cli_main(["ask", str(sample_scene_path()), "Is there a ship?", "--model", str(tiny_model),
                   "--region", f"{x},{y},{w},{h}", "--pipeline", str(recipe), "--max-new-tokens", "6",
                   "--transcript", str(tmp_path / "cli.json")])
    assert rc == 0, capsys.readouterr().err
    cli_ex = json.loads((tmp_path / "cli.json").read_text())["exchanges"][-1]
    assert cli_ex["answer"] == gui_ex.answer and gui_ex.answer
    assert cli_ex["question"] == gui_ex.question and cli_ex["config"] == gui_ex.config
    assert tuple(cli_ex["crop"]) == gui_ex.crop and tuple(cli_ex["input_size"]) == gui_ex.input_size


def test_a_fine_tuned_model_says_when_the_view_is_not_what_it_was_trained_on(qtbot, window, tiny_model, tmp_path,
                                                                              monkeypatch):
    from sarlang_core.preprocess.pipeline import Pipeline
    from sarlang_core.vlm.registry_write import register_model
    from sarlang_core.vlm.tiny import build_tiny_lora

    adapter = build_tiny_lora(tiny_model, tmp_path / "lora")
    registry = tmp_path / "models.json"
    register_model("sar-nodb", tiny_model, adapter=adapter, registry=registry,
                   meta={"pipeline": Pipeline(db=False).to_dict()})
    register_model("sar-paper", tiny_model, adapter=adapter, registry=registry, meta={"pipeline": Pipeline().to_dict()})
    monkeypatch.setenv("SARLANG_MODELS", str(registry))
    open_and_wait(qtbot, window, sample_scene_path())
    settle(qtbot, window)
    assert window.renderer.pipeline == Pipeline()                       # the view shows the paper's chain
    notes = {}
    for name in ("sar-nodb", "sar-paper"):
        with qtbot.waitSignal(window.chat.controller.loaded, timeout=60000):
            window.chat.load(f"registry:{name}")
        notes[name] = window.chat_panel.model_status.text()
    assert notes["sar-nodb"].startswith("✓") and "⚠ trained on band 0 → refined Lee" in notes["sar-nodb"]
    assert "stretch" in notes["sar-nodb"].split("the view shows")[0] and "10·log10" not in \
        notes["sar-nodb"].split("the view shows")[0]
    assert notes["sar-paper"].startswith("✓") and "⚠" not in notes["sar-paper"]

"""Dataset ▸ Generate captions and questions with an LLM, against the real local chat server."""

import json

import pytest
from gui_helpers import screenshot
from PIL import Image

from sarlang_core.datasets.llm_generation import DEFAULT_PROMPTS
from sarlang_core.datasets.store import Store
from sarlang_core.services import datasets as svc
from support.chat_server import serve
from support.ports import dead_port

QA = json.dumps([
    {"question": "What shape is the main building?", "answer": "rectangular", "category": "shape"},
    {"question": "What is the dominant land cover?", "answer": "farmland", "category": "land cover"},
    {"question": "Is this a port?", "answer": "yes", "category": "reasoning"},
])
SECRET = "sk-test-0123456789-secret"
N_PAIRS = 3
PER_PAIR = 2 + 3   # two captions and three general questions


def answers(n, delay=0.0):
    plan = []
    for i in range(n):
        plan += [{"pieces": [f"A farm {i} beside a road."], "delay": delay},
                 {"pieces": [f"Fields around farm {i}, with a road crossing the scene."], "delay": delay},
                 {"pieces": ["```json\n" + QA + "\n```"], "delay": delay}]
    return plan


@pytest.fixture
def pairs_project(tmp_path):
    sar, opt = tmp_path / "sar", tmp_path / "optical"
    sar.mkdir()
    opt.mkdir()
    for i in range(N_PAIRS):
        Image.new("L", (48, 32), 40 + 50 * i).save(sar / f"scene_{i}.png")
        Image.new("RGB", (48, 32), (30 * i, 120, 90)).save(opt / f"scene_{i}.png")
    store = tmp_path / "project.db"
    svc.import_into(store, "pairs", sar, optical_dir=opt)
    return store


@pytest.fixture
def review(open_review, pairs_project):
    return open_review(pairs_project)


@pytest.fixture
def dialog(qtbot, review):
    review.act_llm.trigger()
    dlg = review.llm_dialog
    qtbot.waitUntil(lambda: hasattr(dlg, "pair_counts"), timeout=5000)
    dlg.model.setText("sar-vlm")
    dlg.model.editingFinished.emit()
    dlg.n_inquiries.setValue(3)
    dlg.concurrency.setValue(1)
    return dlg


def run_and_wait(qtbot, dlg, timeout=20000):
    dlg.run_button.click()
    assert dlg.running and not dlg.run_button.isEnabled()
    qtbot.waitUntil(lambda: not dlg.running, timeout=timeout)


def llm_items(store_path):
    with Store.open(store_path) as store:
        return store.items(source="llm")


def test_generation_fills_the_store_and_refreshes_review(qtbot, review, dialog, pairs_project, tmp_path):
    assert dialog.pair_counts == {"pairs": N_PAIRS, "new": N_PAIRS}
    assert dialog.model.text() == "sar-vlm" and dialog.api_key.echoMode() == dialog.api_key.EchoMode.Password
    seen = []
    dialog.generated.connect(seen.append)
    with serve() as ep:
        ep.plan = answers(N_PAIRS)
        dialog.endpoint.setText(ep.url)
        dialog.api_key.setText(SECRET)
        dialog.price_in.setValue(2.5)
        dialog.price_out.setValue(10.0)
        run_and_wait(qtbot, dialog)
        posts = ep.posts()
    out = dialog.outcome
    assert out is not None and seen == [out]
    assert out.items_added == N_PAIRS * PER_PAIR and out.requests == 3 * N_PAIRS and out.cache_hits == 0
    assert out.prompt_tokens > 0 and out.cost_usd > 0 and not out.problems
    assert all({k.lower(): v for k, v in p["headers"].items()}["authorization"] == f"Bearer {SECRET}" for p in posts)
    assert "Added 15 items for 3 of 3 pairs" in dialog.result.text()
    assert "input +" in dialog.live.text() and dialog.progress.value() == dialog.progress.maximum()
    items = llm_items(pairs_project)
    assert len(items) == 15 and {it.type for it in items} == {"caption_concise", "caption_detailed", "general"}
    # the review queue and the statistics know the new items
    qtbot.waitUntil(lambda: (review.stats_view.last or {}).get("items_per_source") == {"llm": 15}, timeout=10000)
    qtbot.waitUntil(lambda: review.queue.total == 15, timeout=10000)
    # the endpoint and prompts are remembered, the key never
    ini = (tmp_path / "settings" / "sarlang-studio.ini").read_text()
    assert ep.url in ini and SECRET not in ini
    screenshot(dialog, "llm_generation_dialog")

    # a second run asks only about pairs without LLM items: there are none
    qtbot.waitUntil(lambda: dialog.pair_counts["new"] == 0, timeout=5000)
    with serve() as ep:
        dialog.endpoint.setText(ep.url)
        run_and_wait(qtbot, dialog)
        assert ep.posts() == []
    assert dialog.outcome.pairs == 0 and "Nothing to do" in dialog.result.text()
    # all pairs again: every answer comes from the cache, nothing is paid twice
    dialog.images.setCurrentIndex(dialog.images.findData(False))
    with serve() as ep:
        dialog.endpoint.setText(ep.url)
        run_and_wait(qtbot, dialog)
        assert ep.posts() == []
    assert dialog.outcome.cache_hits == 9 and dialog.outcome.requests == 0 and dialog.outcome.cost_usd == 0


def test_unreachable_endpoint_and_401_keep_the_dialog_usable(qtbot, dialog, pairs_project):
    with dead_port() as port:
        dialog.endpoint.setText(f"http://127.0.0.1:{port}/v1")
        run_and_wait(qtbot, dialog)
        assert "cannot reach" in dialog.result.text() and str(port) in dialog.result.text()
    assert dialog.run_button.isEnabled() and dialog.endpoint.isEnabled() and not dialog.cancel_button.isEnabled()

    with serve() as ep:
        ep.plan = [{"status": 401, "message": "Incorrect API key provided"}] * 9
        dialog.endpoint.setText(ep.url)
        dialog.api_key.setText(SECRET)
        run_and_wait(qtbot, dialog)
        assert len(ep.posts()) == 1            # the first 401 stops the run: no point asking again
    text = dialog.result.text()
    assert text.startswith("Stopped:") and "401" in text and SECRET not in text
    assert dialog.outcome.items_added == 0 and llm_items(pairs_project) == []
    screenshot(dialog, "llm_generation_dialog_401")

    with serve() as ep:                         # fixed: the same dialog runs again
        ep.plan = answers(N_PAIRS)
        dialog.endpoint.setText(ep.url)
        run_and_wait(qtbot, dialog)
    assert dialog.outcome.items_added == N_PAIRS * PER_PAIR


def test_cancel_keeps_the_finished_pairs(qtbot, dialog, pairs_project):
    with serve() as ep:
        ep.plan = answers(N_PAIRS, delay=0.15)
        dialog.endpoint.setText(ep.url)
        dialog.run_button.click()
        qtbot.waitUntil(lambda: dialog.progress.value() >= 4, timeout=10000)
        dialog.cancel_button.click()
        qtbot.waitUntil(lambda: not dialog.running, timeout=10000)
        asked = len(ep.posts())
    out = dialog.outcome
    assert out.cancelled and not out.stopped_by and asked < 3 * N_PAIRS
    assert out.items_added == PER_PAIR * (asked // 3) and out.pairs_stored == asked // 3
    assert "Cancelled." in dialog.result.text() and dialog.run_button.isEnabled()
    assert len(llm_items(pairs_project)) == out.items_added
    # the next run asks only for what is missing; the answers of the cut-off pair come from the cache
    with serve() as ep:
        ep.plan = answers(N_PAIRS)[asked:]
        dialog.endpoint.setText(ep.url)
        run_and_wait(qtbot, dialog)
        assert len(ep.posts()) == 3 * N_PAIRS - asked
    assert dialog.outcome.cache_hits == asked - 3 * (asked // 3)
    assert len(llm_items(pairs_project)) == N_PAIRS * PER_PAIR


def test_keyring_failure_is_shown_and_prompts_reset(qtbot, dialog, monkeypatch):
    import keyring

    def broken(*_a, **_k):
        raise RuntimeError("no backend")

    monkeypatch.setattr(keyring, "set_password", broken)
    with serve() as ep:
        ep.plan = answers(N_PAIRS)
        dialog.endpoint.setText(ep.url)
        dialog.api_key.setText(SECRET)
        dialog.remember_key.setChecked(True)
        run_and_wait(qtbot, dialog)
    qtbot.waitUntil(lambda: "Key not remembered" in dialog.key_status.text(), timeout=5000)
    assert "OPENAI_API_KEY" in dialog.key_status.text() and dialog.outcome.items_added == 15

    dialog.tabs.setCurrentIndex(0)
    dialog.prompt_edits["concise"].setPlainText("Say one thing.")
    assert dialog.prompts().id != DEFAULT_PROMPTS.id
    dialog.reset_prompt.click()
    p = dialog.prompts()
    assert p.concise == DEFAULT_PROMPTS.concise and p.id == DEFAULT_PROMPTS.id
    dialog.prompt_edits["inquiries"].setPlainText("Bad {placeholder}")
    dialog.run_button.click()
    assert not dialog.running and "placeholder" in dialog.result.text()

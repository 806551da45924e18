"""`score-captions` / `score-vqa` in a real process on a written generated_predictions.jsonl."""

import json
import os
import subprocess
import sys

import pytest

from support.chat_server import serve
from support.ports import dead_port

CLI = [sys.executable, "-m", "sarlang_core.cli", "bench"]


def run(*args, env=None):
    full = dict(os.environ, NO_PROXY="127.0.0.1,localhost", **(env or {}))
    full.pop("OPENAI_API_KEY", None)
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, env=full)


def _write(path, lines):
    with open(path, "wb") as f:
        for line in lines:
            f.write((json.dumps(line) if isinstance(line, dict) else line).encode() + b"\n"
                    if not isinstance(line, bytes) else line + b"\n")
    return path


@pytest.fixture
def vqa_file(tmp_path):
    prompt = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>"
              "<|image_pad|><|vision_end|>Question: What shape is the tank?. Answer the question concisely."
              "<|im_end|>\n<|im_start|>assistant\n")
    return _write(tmp_path / "generated_predictions.jsonl", [
        {"question": "How many ships?", "label": "1", "predict": "12", "type": "counting"},
        {"question": "How many ships?", "label": "3", "predict": "three", "type": "counting"},
        {"question": "Is there a ship?", "label": "yes", "predict": "Yes.", "type": "identification"},
        {"prompt": prompt, "label": "oval", "predict": "circular", "type": "general"},
        b'{"label": "ship", "predict": "a ship", "type": "classification", "question": "What is it? \xff"}',
        b"{not json",
        {"label": "x"},
        {"question": "Where?", "label": "center", "predict": "", "type": "positioning"},
    ])


def test_score_vqa_offline_paper_and_strict(vqa_file):
    r = run("score-vqa", vqa_file)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # paper mode leaves "oval"/"circular" and the empty answer to the judge (offline: undecided)
    assert out["n"] == 6 and out["correct"] == 3 and out["undecided"] == 2 and out["skipped"] == 2
    assert out["by_application"]["instance counting"]["n"] == 2 and out["counting_mae"] == pytest.approx((11 + 0) / 2)
    assert "2 lines skipped" in r.stderr and ":5: not UTF-8, decoded with replacement" in r.stderr
    assert ":6: not valid JSON" in r.stderr and ":7: missing" in r.stderr and "1 empty prediction" in r.stderr
    strict = json.loads(run("score-vqa", vqa_file, "--mode", "strict").stdout)
    assert strict["correct"] == 3 and strict["by_type"]["counting"]["correct"] == 1


def test_score_vqa_with_judge_and_cache(vqa_file, tmp_path):
    cache = tmp_path / "verdicts.sqlite"
    with serve() as ep:
        ep.plan = [{"pieces": ["1"]}, {"pieces": ["1"]}]
        r = run("score-vqa", vqa_file, "--judge", ep.url, "--cache", cache, "--concurrency", "2")
        r2 = run("score-vqa", vqa_file, "--judge", ep.url, "--cache", cache)
        assert len(ep.posts()) == 2
        prompts = [p["body"]["messages"][0]["content"][0]["text"] for p in ep.posts()]
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["correct"] == 5 and out["undecided"] == 0 and out["judge_calls"] == 2
    # the question came out of LLaMA-Factory's rendered prompt
    assert any("Question: what shape is the tank?\nGround Truth Answer: oval\n" in p for p in prompts)
    assert json.loads(r2.stdout)["cache_hits"] == 2


def test_score_captions_and_per_sample(tmp_path):
    f = _write(tmp_path / "p.jsonl", [
        {"label": "Two ships are docked in the harbor.", "predict": "There are two ships in the harbor."},
        {"label": "A bridge crosses the river.", "predict": "A Bridge crosses the river."},
        b'{"label": "caf\xe9", "predict": "cafe"}',
        b"garbage",
    ])
    per = tmp_path / "per.jsonl"
    r = run("score-captions", f, "--per-sample", per)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) >= {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"} and out["n"] == 3
    assert "1 lines skipped" in r.stderr and ":3: not UTF-8" in r.stderr
    rows = [json.loads(x) for x in per.read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["line"] == 1 and "CIDEr" in rows[0]
    ptb = json.loads(run("score-captions", f, "--tokenize", "ptb").stdout)
    assert ptb["Bleu_1"] > out["Bleu_1"]


def test_missing_or_empty_file_fails_clearly(tmp_path):
    r = run("score-captions", tmp_path / "nope.jsonl")
    assert r.returncode == 1 and "no such predictions file" in r.stderr
    bad = _write(tmp_path / "bad.jsonl", [b"{", {"label": 1, "predict": "x"}])
    r = run("score-vqa", bad)
    assert r.returncode == 1 and "no valid prediction lines" in r.stderr


def test_score_vqa_reads_llama_factory_labels_with_newlines_and_no_type(tmp_path):
    path = _write(tmp_path / "generated_predictions.jsonl", [
        {"prompt": "<|im_start|>user\nQuestion: Is there a ship in the image?. Answer the question concisely."
                   "<|im_end|>\n<|im_start|>assistant\n", "label": "yes\n", "predict": "yes"},
        {"prompt": "<|im_start|>user\nHow many ships are there in the image?<|im_end|>\n", "label": "3\n",
         "predict": "4"},
        {"prompt": "<|im_start|>user\nWhere is the ship located in the image?<|im_end|>\n", "label": "top\n",
         "predict": "top"},
    ])
    r = run("score-vqa", path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["undecided"] == 0 and out["correct"] == 2 and out["types_inferred"] == 3
    assert set(out["by_application"]) == {"object identification", "instance counting", "object positioning"}


def test_score_vqa_judge_prompt_and_timeout_flags(tmp_path):
    path = _write(tmp_path / "p.jsonl", [{"question": "What Shape?", "label": "oval", "predict": "round"}])
    with serve() as ep:
        ep.plan = [{"pieces": ["1"]}, {"pieces": ["1"]}]
        r = run("score-vqa", path, "--judge", ep.url, "--cache", tmp_path / "c.sqlite")
        r2 = run("score-vqa", path, "--judge", ep.url, "--cache", tmp_path / "c.sqlite", "--judge-prompt", "paper-text")
        bodies = [p["body"] for p in ep.posts()]
    assert r.returncode == 0 and r2.returncode == 0, r.stderr + r2.stderr
    assert set(bodies[0]) == {"model", "messages", "max_tokens"}
    assert bodies[0]["messages"][0]["content"][0]["text"].startswith("Question: what shape?\nGround Truth Answer: oval")
    assert bodies[1]["messages"][0]["content"].startswith("Question: What Shape?, Ground Truth Answer: oval")


def test_score_vqa_says_when_the_judge_is_unreachable(vqa_file):
    with dead_port() as port:
        url = f"http://user:sk-secret@127.0.0.1:{port}/v1"
        r = run("score-vqa", vqa_file, "--judge", url, "--judge-timeout", "2")
    assert r.returncode == 1
    assert json.loads(r.stdout)["judge_failed"] == 2              # the figures are still printed
    line = r.stderr.strip().splitlines()[-1]
    assert "the judge at http://127.0.0.1:" in line and "2 answer(s) left undecided" in line
    assert "sk-secret" not in r.stderr + r.stdout
    off = run("score-vqa", vqa_file, "--judge", "offline")
    assert off.returncode == 0 and "2 answer(s) need the judge, which is offline" in off.stderr

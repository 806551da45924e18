"""Benchmark runs: the tiny local VLM and the real chat-completions test server on 127.0.0.1."""

import json

import numpy as np
import pytest
from PIL import Image

from sarlang_core.datasets.records import ImageRecord, Item
from sarlang_core.datasets.store import Store
from sarlang_core.errors import CancelledError, EndpointError
from sarlang_core.evaluate.reports import caption_table, compare_table, vqa_table
from sarlang_core.evaluate.run_config import BackendSpec, BenchmarkError, DatasetSpec, JudgeSpec, PromptSpec, RunConfig
from sarlang_core.evaluate.runner import BenchmarkRun
from sarlang_core.progress import CancelToken
from sarlang_core.services import benchmarks
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig
from sarlang_core.vlm.onnx_backend import OnnxBackend
from support.chat_server import serve

from .vlm_fixtures import sar_image


def _png(path, seed):
    Image.fromarray((np.random.default_rng(seed).random((48, 64)) * 255).astype(np.uint8)).save(path)


def _store(tmp_path, n=3):
    """A curation store: n test images with a caption and two questions each, one train image."""
    with Store.open(tmp_path / "p.db", create=True) as store:
        recs = []
        for i in range(n + 1):
            _png(tmp_path / f"im{i}.png", i)
            recs.append(ImageRecord(f"im{i}.png", f"im{i}.png", 64, 48, split="test" if i < n else "train"))
        store.add_images(recs)
        store.add_items([it for i in range(n + 1) for it in (
            Item(f"im{i}.png", "caption_concise", "Describe.", f"a harbour with {i} ships", "imported"),
            Item(f"im{i}.png", "counting", "How many ships are there in the image?", str(i), "imported"),
            Item(f"im{i}.png", "general", "What is the land cover?", "farmland", "imported"))])
    return tmp_path / "p.db"


def _sharegpt(tmp_path, n):
    recs = []
    for i in range(n):
        _png(tmp_path / f"g{i}.png", 10 + i)
        recs.append({"messages": [{"role": "user", "content": "<image>How many ships are there in the image?"},
                                  {"role": "assistant", "content": str(i % 3)},
                                  {"role": "user", "content": "What is the dominant land cover?"},
                                  {"role": "assistant", "content": "farmland"}], "images": [f"g{i}.png"]})
    (tmp_path / "test.json").write_text(json.dumps(recs))
    return tmp_path / "test.json"


def _openai_config(ep, source, **kw):
    judge = kw.pop("judge", JudgeSpec())
    return RunConfig(name=kw.pop("name", "srv"), task="vqa",
                     backend=BackendSpec(kind="openai", model="sar-vlm", endpoint=ep.url),
                     dataset=DatasetSpec(source=str(source)), judge=judge, **kw)


# ---------------------------------------------------------------------------------- local model

def test_generate_batch_equals_one_by_one(tiny_qwen):  # noqa: F811
    from sarlang_core.vlm.local import LocalBackend

    b = LocalBackend(tiny_qwen, device="cpu")
    b.load()
    images = [sar_image(300, 400, 0), sar_image(120, 260, 1), sar_image(200, 200, 2)]
    turns = [[ChatTurn("user", q)] for q in ("How many ships are there?", "Describe the content of this image.",
                                             "Is there a bridge?")]
    cfg = GenerationConfig(max_new_tokens=12)
    batched = b.generate_batch(images, turns, cfg)
    assert batched == [b.answer(im, t, cfg) for im, t in zip(images, turns)]
    from sarlang_core.vlm.local_batch import batch_inputs

    mask = batch_inputs(b, images, turns)["attention_mask"]
    assert mask[:, -1].all() and not mask[:, 0].all()     # really padded, and on the left


def test_local_caption_run_over_a_store(tmp_path, tiny_qwen):  # noqa: F811
    db = _store(tmp_path)
    cfg = RunConfig(name="tiny", task="caption", backend=BackendSpec(model=str(tiny_qwen)),
                    dataset=DatasetSpec(source=str(db)), generation=GenerationConfig(max_new_tokens=8),
                    batch_size=2)
    run = BenchmarkRun.create(tmp_path / "run", cfg)
    events = []
    status = run.execute(progress=events.append)
    assert status.state == "complete" and (status.done, status.total, status.failed) == (3, 3, 0)
    preds = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in preds] == [f"caption_concise:im{i}.png" for i in range(3)]   # the train image is out
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["samples"] == {"total": 3, "predicted": 3, "failed": 0}
    assert set(m["caption"]["by_type"]["caption_concise"]) >= {"Bleu_1", "Bleu_4", "ROUGE_L", "CIDEr"}
    per_sample = [json.loads(line) for line in (tmp_path / "run" / "caption_scores.jsonl").read_text().splitlines()]
    assert [s["id"] for s in per_sample] == [p["id"] for p in preds] and "CIDEr" in per_sample[0]
    assert m["run"]["train_strategy"] == "Without Finetune" and m["run"]["pipeline"] is None
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| Caption | Model | Param | Train Strategy | BLEU_1 |" in report and "| Concise | " in report
    assert (tmp_path / "run" / "charts" / "caption_CIDEr.png").read_bytes()[:4] == b"\x89PNG"
    gen = [e for e in events if e.stage == "generate" and e.done]
    assert gen[-1].done == 3 and gen[-1].eta_s == 0.0 and "ETA" in gen[-1].message
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert (manifest["backends"][-1]["batch_size"], manifest["backends"][-1]["batch_note"]) == (2, "2 (as asked)")
    # batch of 2 gives what "auto" (the default; 4 on the CPU) gives
    run1 = BenchmarkRun.create(tmp_path / "run1", cfg.with_(batch_size="auto", name="one"))
    run1.execute()
    assert [r["prediction"] for r in run1.samples()] == [p["prediction"] for p in preds]
    entry = json.loads((tmp_path / "run1" / "manifest.json").read_text())["backends"][-1]
    assert entry["batch_size"] == 4 and "no GPU memory to measure" in entry["batch_note"]


# ---------------------------------------------------------------------------------- server backend

def test_vqa_run_against_a_server_with_a_bad_judge(tmp_path):
    src = _sharegpt(tmp_path, 3)      # 6 questions: 3 counting, 3 land cover
    with serve() as ep:
        # model answers in order (concurrency 1), then the judge: nonsense, a stall past its timeout, "1"
        ep.plan = [{"pieces": [a]} for a in ("0", "open field", "2 ships", "crops", "1", "farmland here")]
        ep.plan += [{"pieces": ["perhaps"]}, {"delay": 3.0, "pieces": ["1"]}, {"pieces": ["1"]}]
        cfg = _openai_config(ep, src, concurrency=1,
                             judge=JudgeSpec(endpoint=ep.url, timeout=1.0, max_retries=0, concurrency=1))
        run = BenchmarkRun.create(tmp_path / "run", cfg)
        status = run.execute()
    assert status.state == "complete" and status.done == 6
    verdicts = {r["id"]: r for r in map(json.loads, (tmp_path / "run" / "verdicts.jsonl").read_text().splitlines())}
    assert [verdicts[f"q{i}"]["correct"] for i in (0, 2, 4, 5)] == [True, False, False, True]
    undecided = [v for v in verdicts.values() if v["correct"] is None]
    assert [v["id"] for v in undecided] == ["q1", "q3"]
    assert "unreadable judge reply: 'perhaps'" in verdicts["q1"]["error"]
    assert "timed out" in verdicts["q3"]["error"] or "timeout" in verdicts["q3"]["error"].lower()
    m = run.metrics()
    assert m["vqa"]["undecided"] == len(undecided) and m["vqa"]["judge_problem_count"] == len(undecided)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "unreadable judge reply: 'perhaps'" in report and "| Model | Param | Train Strategy | Accuracy |" in report
    assert len(run.predictions()) == 6        # nothing computed was lost
    rows = benchmarks.run_samples(tmp_path / "run")
    assert rows[0]["verdict"]["how"] == "rule" and rows[0]["prediction"] == "0" and rows[0]["references"] == ["0"]
    assert all(r["scores"] is None for r in rows) and not (tmp_path / "run" / "caption_scores.jsonl").exists()
    # 3 counting, 3 land cover ("others" in the paper's applications), for the browser's filter
    assert sorted(r["application"] for r in rows) == ["instance counting"] * 3 + ["others"] * 3


def test_caption_run_writes_per_sample_scores(tmp_path):
    from sarlang_core.evaluate.caption_metrics import CAPTION_KEYS, score_captions_detailed

    db = _store(tmp_path, n=4)
    with serve() as ep:
        ep.plan = [{"pieces": ["a harbour with 0 ships"]}, {"pieces": ["a harbour with many boats"]},
                   {"status": 400, "message": "image too large"}, {"pieces": ["dense forest"]}]
        cfg = RunConfig(name="cap", task="caption", concurrency=1, dataset=DatasetSpec(source=str(db)),
                        backend=BackendSpec(kind="openai", model="sar-vlm", endpoint=ep.url))
        run = BenchmarkRun.create(tmp_path / "run", cfg)
        status = run.execute()
    assert (status.done, status.failed) == (3, 1)
    path = tmp_path / "run" / "caption_scores.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    ids = [f"caption_concise:im{i}.png" for i in (0, 1, 3)]          # im2 failed: no line
    assert [rec["id"] for rec in lines] == ids and {rec["type"] for rec in lines} == {"caption_concise"}
    preds = ["a harbour with 0 ships", "a harbour with many boats", "dense forest"]
    expected = score_captions_detailed(preds, [[f"a harbour with {i} ships"] for i in (0, 1, 3)])
    assert [{k: rec[k] for k in CAPTION_KEYS} for rec in lines] == expected.per_sample
    assert lines[0]["Bleu_4"] > lines[1]["Bleu_4"] and lines[2]["CIDEr"] == 0.0
    m = run.metrics()["caption"]["all"]
    assert {k: m[k] for k in CAPTION_KEYS} == expected.corpus        # the same engine as the corpus figures
    rows = {r["id"]: r for r in benchmarks.run_samples(tmp_path / "run")}
    assert [rows[i]["scores"] for i in ids] == expected.per_sample
    assert rows["caption_concise:im2.png"]["scores"] is None and rows[ids[0]]["verdict"] is None
    # `bench report` scores again and rewrites the file (atomically: no temp file left behind)
    path.write_text('{"id": "stale"}\n')
    BenchmarkRun.open(tmp_path / "run").score()
    assert [json.loads(line) for line in path.read_text().splitlines()] == lines
    assert sorted(p.name for p in (tmp_path / "run").iterdir() if "caption_scores" in p.name) == [path.name]


def test_resume_cuts_a_torn_line_and_keeps_every_written_byte(tmp_path):
    src = _sharegpt(tmp_path, 4)
    with serve() as ep:
        run = BenchmarkRun.create(tmp_path / "run", _openai_config(ep, src, concurrency=3))
        token = CancelToken()
        seen = []

        def stop_after_three(p):
            if p.stage == "generate" and p.done >= 3:
                seen.append(p.done)
                token.cancel()
        with pytest.raises(CancelledError):
            run.execute(progress=stop_after_three, cancel=token)
        pred_file = tmp_path / "run" / "predictions.jsonl"
        before = pred_file.read_bytes()
        assert 3 <= len(before.splitlines()) < 8 and run.status().state == "partial"
        assert run.status().outcome["state"] == "cancelled"
        with open(pred_file, "ab") as f:
            f.write(b'{"id": "q7", "predic')          # what a kill mid-write leaves
        status = BenchmarkRun.open(tmp_path / "run").execute()
    after = pred_file.read_bytes()
    assert after.startswith(before) and status.state == "complete"
    ids = [json.loads(line)["id"] for line in after.splitlines()]
    assert sorted(ids) == sorted(f"q{i}" for i in range(8)) and len(ids) == 8


def test_failed_samples_are_reported_and_retried_on_resume(tmp_path):
    src = _sharegpt(tmp_path, 2)
    with serve() as ep:
        ep.plan = [{"pieces": ["0"]}, {"status": 400, "message": "image too large"}]
        run = BenchmarkRun.create(tmp_path / "run", _openai_config(ep, src, concurrency=1))
        status = run.execute()
        assert (status.done, status.failed) == (3, 1) and "1 sample(s) failed" in status.outcome["message"]
        row = [r for r in run.samples() if r["id"] == "q1"][0]
        assert row["prediction"] is None and "image too large" in row["error"]
        assert "1 failed" in (tmp_path / "run" / "report.md").read_text()
        status = run.execute()
    assert (status.state, status.done, status.failed) == ("complete", 4, 0)


def test_a_dead_endpoint_stops_the_run_with_one_clear_error(tmp_path):
    src = _sharegpt(tmp_path, 5)
    with serve() as ep:
        ep.plan = [{"status": 404, "message": "no such model"}] * 10
        run = BenchmarkRun.create(tmp_path / "run", _openai_config(ep, src, concurrency=1))
        with pytest.raises(BenchmarkError, match="first 8 samples all failed.*no such model"):
            run.execute()
    assert run.status().outcome["state"] == "failed"


# ---------------------------------------------------------------------------------- config

def test_config_round_trip_and_clear_errors(tmp_path):
    cfg = RunConfig(name="a", task="vqa", backend=BackendSpec(model="m", adapter="ad"),
                    dataset=DatasetSpec(source="x.db", types=("counting",), limit=5),
                    pipeline={"filter": {"name": "lee", "window": 5}})
    cfg.save(tmp_path / "run.json")
    assert RunConfig.load(tmp_path / "run.json") == cfg
    with pytest.raises(BenchmarkError, match="do not belong to a caption run"):
        cfg.with_(task="caption")
    with pytest.raises(BenchmarkError, match="must contain \\{question\\}"):
        PromptSpec(vqa_template="Answer.")
    with pytest.raises(BenchmarkError, match="needs an endpoint"):
        BackendSpec(kind="openai", model="m")
    with pytest.raises(BenchmarkError, match="pipeline: .*odd"):
        cfg.with_(pipeline={"filter": {"name": "lee", "window": 4}})
    bad = cfg.to_dict()
    bad["dataset"]["colour"] = 1
    with pytest.raises(BenchmarkError, match="dataset: unknown field.*colour"):
        RunConfig.from_dict(bad)
    with pytest.raises(BenchmarkError, match="needs a dataset"):
        RunConfig(name="a")


# ---------------------------------------------------------------------------------- reports

def _metrics(name, task, adapter=False, pipeline=None, **blocks):
    return {"run": {"name": name, "task": task, "model": "QWEN2.5-VL", "param": "3B", "pipeline": pipeline,
                    "train_strategy": "LoRA Finetune" if adapter else "Without Finetune"},
            "samples": {"total": 10, "predicted": 10, "failed": 0}, **blocks}


def _cap(b1, cider):
    return {"Bleu_1": b1, "Bleu_2": 0.1492, "Bleu_3": 0.0987, "Bleu_4": 0.0611, "ROUGE_L": 0.2531, "CIDEr": cider}


def test_caption_table_golden():
    m = _metrics("base", "caption", caption={"by_type": {"caption_detailed": _cap(0.2609, 0.124),
                                                         "caption_concise": _cap(0.2518, 0.0579)}})
    assert caption_table([m]).markdown() == (
        "| Caption | Model | Param | Train Strategy | BLEU_1 | BLEU_2 | BLEU_3 | BLEU_4 | ROUGE_L | CIDEr |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        "| Complex | QWEN2.5-VL | 3B | Without Finetune | 26.09 | 14.92 | 9.87 | 6.11 | 25.31 | 12.40 |\n"
        "| Concise | QWEN2.5-VL | 3B | Without Finetune | 25.18 | 14.92 | 9.87 | 6.11 | 25.31 | 5.79 |\n")


def test_vqa_table_and_csv_golden():
    m = _metrics("ft", "vqa", adapter=True, vqa={
        "accuracy": 0.7333, "undecided": 0,
        "by_application": {"others": {"accuracy": 0.5}, "instance counting": {"accuracy": 0.81234}}})
    t = vqa_table([m])
    assert t.markdown() == ("| Model | Param | Train Strategy | Accuracy | Instance counting | Others |\n"
                            "|---|---|---|---|---|---|\n"
                            "| QWEN2.5-VL | 3B | LoRA Finetune | 73.33 | 81.23 | 50.00 |\n")
    assert t.csv() == ("Model,Param,Train Strategy,Accuracy,Instance counting,Others\n"
                       "QWEN2.5-VL,3B,LoRA Finetune,73.33,81.23,50.00\n")


def test_compare_golden_with_pre_column_and_deltas(tmp_path):
    a = _metrics("raw", "vqa", vqa={"accuracy": 0.40, "by_application": {"others": {"accuracy": 0.30}}})
    b = _metrics("pre", "vqa", pipeline="band 0 → refined Lee 7x7", vqa={
        "accuracy": 0.4281, "by_application": {"others": {"accuracy": 0.25}}})
    for name, m in (("a", a), ("b", b)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(m))
    assert compare_table([a, b]).markdown() == (
        "| Model | Param | Pre | Train Strategy | Accuracy | Others |\n"
        "|---|---|---|---|---|---|\n"
        "| QWEN2.5-VL | 3B | ✗ | Without Finetune | 40.00 | 30.00 |\n"
        "| QWEN2.5-VL | 3B | ✓ | Without Finetune | 42.81 | 25.00 |\n"
        "| Δ vs QWEN2.5-VL |  |  |  | +2.81 | -5.00 |\n"
        "\n- raw: images as stored\n- pre: band 0 → refined Lee 7x7\n")
    table = benchmarks.compare_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp")
    assert (tmp_path / "cmp" / "comparison.csv").read_text() == table.csv()
    assert (tmp_path / "cmp" / "charts" / "vqa_by_application.png").stat().st_size > 1000
    with pytest.raises(BenchmarkError, match="different tasks"):
        compare_table([a, _metrics("c", "caption", caption={"by_type": {}})])


def test_compare_captions_without_pre_column():
    a = _metrics("base", "caption", caption={"by_type": {"caption_concise": _cap(0.2518, 0.0579)}})
    b = _metrics("ft", "caption", adapter=True, caption={"by_type": {"caption_concise": _cap(0.3057, 0.0625)}})
    rows = compare_table([a, b]).rows
    assert rows[0][:4] == ("Concise", "QWEN2.5-VL", "3B", "Without Finetune")
    assert rows[1][3:5] == ("LoRA Finetune", "30.57") and rows[2][1] == "Δ vs QWEN2.5-VL"
    assert rows[2][4:] == ("+5.39", "+0.00", "+0.00", "+0.00", "+0.00", "+0.46")


def test_service_lists_runs_and_builds_the_cli_command(tmp_path):
    src = _sharegpt(tmp_path, 1)
    with serve() as ep:
        cfg = _openai_config(ep, src, name="listed")
        BenchmarkRun.create(tmp_path / "runs" / "r1", cfg).execute()
        launch = benchmarks.run_command(cfg, tmp_path / "runs" / "r2")
    rows = benchmarks.list_runs(tmp_path / "runs")
    assert [(r.name, r.status.state, r.model) for r in rows] == [("listed", "complete", "sar-vlm")]
    assert "accuracy" in rows[0].headline
    env_name = launch.args[launch.args.index("--config-env") + 1]
    assert launch.env[env_name] == json.dumps(cfg.to_dict(secrets=True), ensure_ascii=False)
    assert benchmarks.parse_event('{"event": "progress", "done": 1}') == {"event": "progress", "done": 1}
    assert benchmarks.parse_event("Loading weights 100%") is None


def test_applications_in_keeps_the_papers_order_then_others_by_name():
    from sarlang_core.evaluate.metric_names import applications_in

    metrics = [{"vqa": {"by_application": {"others": {}, "zebra": {}, "instance counting": {}}}},
               {"vqa": None}, {"caption": {}}, {"vqa": {"by_application": {"object identification": {}, "alpha": {}}}}]
    assert applications_in(metrics) == ["object identification", "instance counting", "others", "alpha", "zebra"]


def test_a_benchmark_run_on_an_onnx_export_predicts_what_torch_does(tmp_path, tiny_qwen, tiny_lora,  # noqa: F811
                                                                     tiny_qwen_onnx):
    db = _store(tmp_path)
    preds = {}
    for name, spec in (("onnx", BackendSpec(model=str(tiny_qwen_onnx))),
                       ("torch", BackendSpec(model=str(tiny_qwen), adapter=str(tiny_lora)))):
        cfg = RunConfig(name=name, task="caption", backend=spec, dataset=DatasetSpec(source=str(db)),
                        generation=GenerationConfig(max_new_tokens=8), batch_size=2)
        run = BenchmarkRun.create(tmp_path / name, cfg)
        assert run.execute().state == "complete"
        preds[name] = [r["prediction"] for r in run.samples()]
    assert len(preds["onnx"]) == 3 and preds["onnx"] == preds["torch"]


def test_a_resume_with_another_model_is_refused_with_both_names(tmp_path, tiny_qwen, tiny_qwen_onnx):  # noqa: F811
    db = _store(tmp_path)
    cfg = RunConfig(name="r", task="caption", backend=BackendSpec(model=str(tiny_qwen)),
                    dataset=DatasetSpec(source=str(db)), generation=GenerationConfig(max_new_tokens=4))
    run = BenchmarkRun.create(tmp_path / "run", cfg)
    assert run.execute(score=False).state == "generated"
    preds = tmp_path / "run" / "predictions.jsonl"
    kept = preds.read_text().splitlines()[:1]
    preds.write_text(kept[0] + "\n")                    # two samples left to predict
    other = OnnxBackend(tiny_qwen_onnx, device="cpu")
    with pytest.raises(EndpointError, match=r"predicted by 'tiny-qwen2.5-vl' \(local\); the backend now is "
                                            r"'tiny-qwen-onnx \+ tiny-lora' \(onnxruntime\)"):
        BenchmarkRun.open(tmp_path / "run").execute(backend=other, score=False)
    assert preds.read_text().splitlines() == kept        # nothing written by the other model
    status = BenchmarkRun.open(tmp_path / "run").execute(score=False)   # the same model resumes
    assert status.state == "generated" and status.done == 3

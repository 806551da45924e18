"""`sarlang-cli bench` in real processes: SIGKILL a run half-way, resume it, report, compare."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from support.chat_server import serve
from support.ports import dead_port

CLI = [sys.executable, "-m", "sarlang_core.cli"]


def _env():
    env = dict(os.environ, NO_PROXY="127.0.0.1,localhost")
    env.pop("OPENAI_API_KEY", None)
    return env


def run(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, env=_env())


def _dataset(folder, n):
    recs = []
    for i in range(n):
        Image.fromarray((np.random.default_rng(i).random((40, 56)) * 255).astype(np.uint8)).save(folder / f"s{i}.png")
        recs.append({"messages": [{"role": "user", "content": "<image>How many ships are there in the image?"},
                                  {"role": "assistant", "content": str(i)}], "images": [f"s{i}.png"]})
    (folder / "test.json").write_text(json.dumps(recs))
    return folder / "test.json"


def _lines(path):
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def test_kill_then_resume_completes_every_sample_once(tmp_path):
    src = _dataset(tmp_path, 12)
    out = tmp_path / "run"
    preds = out / "predictions.jsonl"
    with serve() as ep:
        ep.plan = [{"delay": 0.25, "pieces": [str(i)]} for i in range(12)]     # slow model
        proc = subprocess.Popen([*CLI, "bench", "run", "--dataset", src, "--endpoint", ep.url,
                                 "--served-model", "sar-vlm", "--concurrency", "1", "--judge", "offline",
                                 "--out", out, "--progress-jsonl"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        deadline = time.monotonic() + 60
        while len(_lines(preds)) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        stdout, _ = proc.communicate(timeout=30)
        before = preds.read_bytes()
        n_before = len(before.splitlines())
        assert 4 <= n_before < 12, stdout
        events = [json.loads(line) for line in stdout.splitlines()]
        assert {"event", "stage", "done", "total", "message", "eta_s"} <= set(events[-1])
        assert not (out / "metrics.json").exists()
        ep.plan = []                                                           # fast now
        res = run("bench", "resume", out, "--progress-jsonl")
    assert res.returncode == 0, res.stderr
    after = preds.read_bytes()
    assert after.startswith(before)                                            # earlier lines byte-identical
    ids = [json.loads(line)["id"] for line in after.splitlines()]
    assert sorted(ids) == sorted(f"q{i}" for i in range(12)) and len(ids) == 12
    done = json.loads(res.stdout.splitlines()[-1])
    assert done["event"] == "done" and done["state"] == "complete" and done["done"] == 12
    first = [json.loads(line) for line in res.stdout.splitlines()][0]
    assert first["stage"] == "generate" and first["done"] == n_before        # resumed, not restarted
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["samples"]["predicted"] == 12 and "instance counting" in metrics["vqa"]["by_application"]

    rep = run("bench", "report", out, "--no-rescore")
    assert rep.returncode == 0 and "| Model | Param | Train Strategy | Accuracy |" in rep.stdout
    st = json.loads(run("bench", "status", out).stdout)
    assert (st["state"], st["done"], st["total"]) == ("complete", 12, 12)
    cmp_ = run("bench", "compare", out, out, "--out", tmp_path / "cmp")
    assert cmp_.returncode == 0 and "+0.00" in cmp_.stdout and (tmp_path / "cmp" / "comparison.md").exists()


def test_bad_input_gives_one_line_errors(tmp_path):
    res = run("bench", "run", "--dataset", tmp_path / "missing.json", "--model", "x", "--out", tmp_path / "r")
    assert res.returncode == 1 and "missing.json: dataset not found" in res.stderr
    res = run("bench", "resume", tmp_path)
    assert res.returncode == 1 and "not a benchmark run folder" in res.stderr
    src = _dataset(tmp_path, 1)
    res = run("bench", "run", "--dataset", src, "--endpoint", "http://127.0.0.1:9/v1", "--served-model", "m",
              "--types", "caption_concise", "--out", tmp_path / "r2", "--progress-jsonl")
    assert res.returncode == 1 and "do not belong to a vqa run" in res.stderr
    assert json.loads(res.stdout.splitlines()[-1])["event"] == "error"
    res = run("bench", "run", "--dataset", src, "--model", "x", "--batch-size", "lots", "--out", tmp_path / "r3")
    assert res.returncode == 1 and "batch_size must be 1..256 or 'auto', got 'lots'" in res.stderr
    assert not (tmp_path / "r3").exists()


def test_request_and_judge_timeouts_are_flags(tmp_path):
    src = _dataset(tmp_path, 1)
    out = tmp_path / "run"
    with serve() as ep:
        ep.plan = [{"delay": 30.0}] * 4                       # a hung model server
        t0 = time.monotonic()
        r = run("bench", "run", "--dataset", src, "--endpoint", ep.url, "--served-model", "sar-vlm",
                "--judge", "offline", "--request-timeout", "1", "--judge-timeout", "7", "--judge-prompt",
                "paper-text", "--out", out, "--quiet")
        took = time.monotonic() - t0
    assert took < 25, r.stderr                                   # 4 tries of 1 s plus backoff, not 4 x 60 s
    config = json.loads((out / "run.json").read_text())
    assert config["backend"]["timeout"] == 1 and config["judge"]["timeout"] == 7
    assert config["judge"]["prompt"] == "paper-text"
    errors = [json.loads(line) for line in _lines(out / "errors.jsonl")]
    assert "timed out after 1 s" in errors[0]["error"]


def test_an_unreachable_judge_fails_the_run_after_writing_the_scores(tmp_path):
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "a.png")
    recs = [{"messages": [{"role": "user", "content": "<image>What shape is the tank?"},
                          {"role": "assistant", "content": "oval"}], "images": ["a.png"]}] * 2
    (tmp_path / "test.json").write_text(json.dumps(recs))
    with dead_port() as port, serve() as ep:
        dead = f"http://127.0.0.1:{port}/v1"
        r = run("bench", "run", "--dataset", tmp_path / "test.json", "--endpoint", ep.url, "--served-model", "sar-vlm",
                "--judge", dead, "--judge-timeout", "2", "--out", tmp_path / "run", "--progress-jsonl")
    assert r.returncode == 1
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[-2]["event"] == "done" and events[-1]["event"] == "error"
    assert f"the judge at {dead} failed" in events[-1]["message"]
    assert f"the judge at {dead} failed" in r.stderr.strip().splitlines()[-1]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["vqa"]["judge_failed"] == 2 and metrics["vqa"]["undecided"] == 2


def test_a_key_in_the_endpoint_url_is_used_but_never_written(tmp_path):
    import base64
    key, qkey = "sk-urlsecret-123456", "qs-querysecret-987"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "a.png")
    recs = [{"messages": [{"role": "user", "content": "<image>What shape is the tank?"},
                          {"role": "assistant", "content": "oval"}], "images": ["a.png"]}]
    (tmp_path / "test.json").write_text(json.dumps(recs))
    out = tmp_path / "run"
    with serve() as ep:
        url = ep.url.replace("http://", f"http://user:{key}@") + f"?key={qkey}"
        ep.plan = [{"pieces": ["round"]}, {"pieces": ["1"]}]
        r = run("bench", "run", "--dataset", tmp_path / "test.json", "--endpoint", url, "--served-model", "sar-vlm",
                "--judge", url, "--out", out)
        posts = ep.posts()
        ep.plan = [{"status": 500, "echo_headers": True}] * 8     # a failing, header-echoing server
        (out / "predictions.jsonl").unlink()
        r2 = run("bench", "run", "--config", out / "run.json", "--endpoint", url, "--out", tmp_path / "run2")
    assert r.returncode == 0, r.stderr
    assert [p["headers"]["authorization"] for p in posts] == [f"Bearer {key}"] * 2   # model, then judge
    assert all(f"key={qkey}" in p["path"] for p in posts)
    written = "".join(p.read_text(errors="replace") for d in (out, tmp_path / "run2") for p in d.rglob("*")
                      if p.is_file() and p.suffix != ".png" and p.suffix != ".sqlite")
    shown = r.stdout + r.stderr + r2.stdout + r2.stderr
    basic = base64.b64encode(f"user:{key}".encode()).decode()
    for secret in (key, qkey, basic):
        assert secret not in written and secret not in shown, secret
    assert json.loads((out / "run.json").read_text())["backend"]["endpoint"] == ep.url
    assert json.loads((out / "metrics.json").read_text())["run"]["endpoint"] == ep.url
    assert "Bearer ***" in (tmp_path / "run2" / "errors.jsonl").read_text()   # the echo reached the log, masked


BAR_AT_LOAD = """
import sys
from sarlang_core.vlm import openai_backend
original = openai_backend.OpenAIBackend.load
def load(self, **kw):   # a library's own bar while the model loads, as transformers' "Loading weights"
    from tqdm import tqdm
    for _ in tqdm(range(3), desc="Loading weights"):
        pass
    return original(self, **kw)
openai_backend.OpenAIBackend.load = load
from sarlang_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_quiet_hides_every_bar_the_model_loading_included(tmp_path):
    src = _dataset(tmp_path, 1)
    with serve() as ep:
        def bench(*extra):
            return subprocess.run([sys.executable, "-c", BAR_AT_LOAD, "bench", "run", "--dataset", str(src),
                                   "--endpoint", ep.url, "--served-model", "sar-vlm", "--judge", "offline", *extra],
                                  capture_output=True, text=True, timeout=300, env=_env())
        loud = bench("--out", str(tmp_path / "loud"))
        quiet = bench("--out", str(tmp_path / "quiet"), "--quiet")
        jsonl = bench("--out", str(tmp_path / "jsonl"), "--progress-jsonl")
    assert loud.returncode == quiet.returncode == jsonl.returncode == 0, quiet.stderr
    assert "Loading weights" in loud.stderr                       # the bar is there without --quiet
    assert "Loading weights" not in quiet.stderr and "it/s" not in quiet.stderr
    assert "Loading weights" not in jsonl.stderr + jsonl.stdout


def test_config_from_an_unset_environment_variable_is_a_clear_error(tmp_path):
    """The GUI hands a run its config (credentials included) in the environment, never on the
    command line; a missing variable says which one."""
    env = {k: v for k, v in os.environ.items() if k != "SARLANG_NO_SUCH_CONFIG"}
    r = subprocess.run([*CLI, "bench", "run", "--config-env", "SARLANG_NO_SUCH_CONFIG", "--out",
                        str(tmp_path / "run")], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 1 and "SARLANG_NO_SUCH_CONFIG" in r.stderr and "not set" in r.stderr
    assert not (tmp_path / "run").exists()

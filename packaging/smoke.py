"""Smoke tests on a built folder: the programs themselves, with no venv and no Python on PATH.

    python packaging/smoke.py dist/full/sarlang-studio --variant full --tiny /tmp/tinyq --work /tmp/smoke

Each step runs `sarlang` / `sarlang-cli` from the folder in a clean environment (PATH=/usr/bin:/bin,
a fresh HOME, Qt offscreen) and prints one line: ok / SKIP / FAIL. The full variant asks a tiny
model folder and, when `export-onnx` exists, exports it to ONNX and asks that too (same answer);
the field variant asks the ONNX export (made by the full variant's run in the same --work
folder) and must refuse the torch model folder with a sentence naming the full variant.
Results go to WORK/smoke-<variant>.json as well. Exit 1 when a step failed. Several minutes:
packaging/build.py runs it; CI does not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

QUESTION = "What is in this image?"
TOKENS = "8"


class Skipped(Exception):
    """The step cannot run here (say why)."""


class Failed(Exception):
    """The step ran and went wrong (say how)."""


class Smoke:
    def __init__(self, folder: Path, variant: str, work: Path, tiny: Optional[Path]):
        self.folder, self.variant, self.work, self.tiny = folder.resolve(), variant, work.resolve(), tiny
        self.sample = self.folder / "_internal" / "sarlang_resources" / "sample_scene.tif"
        self.onnx = self.work / "tiny-onnx"
        self.home = self.work / f"home-{variant}"
        self.home.mkdir(parents=True, exist_ok=True)
        self.answers_file = self.work / "answers.json"

    def env(self, **extra: str) -> Dict[str, str]:
        env = {"HOME": str(self.home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen",
               "XDG_CONFIG_HOME": str(self.home / ".config"), "XDG_CACHE_HOME": str(self.home / ".cache"),
               "XDG_DATA_HOME": str(self.home / ".local/share"), "XDG_RUNTIME_DIR": str(self.home / "run")}
        (self.home / "run").mkdir(mode=0o700, exist_ok=True)
        env.update(extra)
        return env

    def run(self, *args: object, program: str = "sarlang-cli", ok: bool = True, timeout: float = 600,
            **env: str) -> subprocess.CompletedProcess:
        cmd = [str(self.folder / program), *map(str, args)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=self.env(**env),
                           cwd=str(self.work))
        if ok and r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise Failed(f"{program} {' '.join(map(str, args))[:80]} exited {r.returncode}: {' | '.join(tail)}")
        return r

    # -- answers shared between the two variants' runs ---------------------------------------
    def answers(self) -> Dict[str, str]:
        return json.loads(self.answers_file.read_text()) if self.answers_file.is_file() else {}

    def remember(self, key: str, answer: str) -> None:
        data = self.answers()
        data[key] = answer
        self.answers_file.write_text(json.dumps(data, indent=1))

    def registry(self, path: Path) -> str:
        reg = self.work / f"registry-{self.variant}.json"
        reg.write_text(json.dumps({"models": [{"name": "smoke", "path": str(path)}]}))
        return str(reg)

    def ask(self, model: Path) -> str:
        return self.run("ask", self.sample, QUESTION, "--model", model, "--max-new-tokens", TOKENS).stdout.strip()


# ---------------------------------------------------------------------------- the steps
def step_version(s: Smoke) -> str:
    line = s.run("--version").stdout.strip()
    if f"· {s.variant}" not in line or "frozen build" not in line:
        raise Failed(f"--version says {line!r}, expected the {s.variant} variant of a frozen build")
    return line


def step_self_test(s: Smoke) -> str:
    model = s.tiny if s.variant == "full" else (s.onnx if s.onnx.is_dir() else None)
    extra = {"SARLANG_MODELS": s.registry(model)} if model else {}
    shot = s.work / f"self-test-{s.variant}.png"
    r = s.run("--self-test", "--screenshot", shot, program="sarlang", ok=False, **extra)
    last = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    if r.returncode != 0 or last != "self-test passed" or not shot.is_file():
        raise Failed(f"exit {r.returncode}: {last}")
    model_line = next((ln for ln in r.stdout.splitlines() if " model:" in ln), "")
    return f"passed; {model_line.strip()}"


def step_info(s: Smoke) -> str:
    out = s.run("info", s.sample).stdout
    if "1024" not in out:
        raise Failed(f"info does not give the sample's size: {out[:120]!r}")
    return out.strip().splitlines()[0][:80]


def step_preprocess(s: Smoke) -> str:
    out = s.work / f"processed-{s.variant}.tif"
    s.run("preprocess", s.sample, out, "--overwrite")
    if not out.is_file() or out.stat().st_size < 10_000:
        raise Failed(f"{out} missing or too small")
    return f"{out.name}: {out.stat().st_size // 1024} KiB"


def step_ask_torch(s: Smoke) -> str:
    if s.tiny is None or not s.tiny.is_dir():
        raise Skipped("no tiny model folder (--tiny)")
    if s.variant == "field":
        r = s.run("ask", s.sample, QUESTION, "--model", s.tiny, "--max-new-tokens", TOKENS, ok=False)
        if r.returncode == 1 and "full variant" in r.stderr and "Traceback" not in r.stderr:
            return f"refused as it should: {r.stderr.strip()[:110]}"
        raise Failed(f"expected a one-line 'needs the full variant', got exit {r.returncode}: {r.stderr[-200:]}")
    answer = s.ask(s.tiny)
    s.remember("torch", answer)
    return f"answer {answer!r}"


def _has_export(s: Smoke) -> bool:
    return s.run("export-onnx", "--help", ok=False).returncode == 0


def step_export_onnx(s: Smoke) -> str:
    if s.variant != "full":
        raise Skipped("export-onnx runs in the full variant only")
    if s.tiny is None or not _has_export(s):
        raise Skipped("export-onnx not available")
    s.run("export-onnx", s.tiny, "--out", s.onnx, timeout=900)
    return f"{s.onnx.name}: {sum(f.stat().st_size for f in s.onnx.rglob('*') if f.is_file()) // 1024} KiB"


def step_ask_onnx(s: Smoke) -> str:
    if not s.onnx.is_dir():
        raise Skipped("export-onnx not available (no ONNX export to ask)")
    answer = s.ask(s.onnx)
    torch_answer = s.answers().get("torch")
    if torch_answer is not None and answer != torch_answer:
        raise Failed(f"ONNX answered {answer!r}, torch {torch_answer!r}")
    return f"answer {answer!r}" + (" (same as torch)" if torch_answer is not None else "")


def step_explain(s: Smoke) -> str:
    if s.tiny is None or not s.tiny.is_dir():
        raise Skipped("no tiny model folder (--tiny)")
    out = s.work / f"maps-{s.variant}"
    shutil.rmtree(out, ignore_errors=True)
    r = s.run("explain", s.sample, "Where is the ship?", "--model", s.tiny, "--answer", "A ship near the pier.",
              "--words", "ship", "--out", out, ok=s.variant == "full", timeout=300)
    if s.variant == "field":
        if r.returncode == 1 and "full variant" in r.stderr and "Traceback" not in r.stderr:
            return "refused as it should (needs the full variant)"
        raise Failed(f"expected 'needs the full variant', got exit {r.returncode}: {r.stderr[-200:]}")
    words = json.loads((out / "words.json").read_text())["words"]
    tifs = sorted(p.name for p in out.glob("*.tif"))
    if [w["text"] for w in words] != ["ship"] or not tifs:
        raise Failed(f"expected a map of 'ship', got {words} and {tifs}")
    return f"Grad-CAM map of 'ship': {', '.join(tifs)}"


def _coco(folder: Path) -> Path:
    from PIL import Image

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    recs, anns = [], []
    for i in range(4):
        Image.new("L", (160, 128), 40 + 40 * i).save(images / f"chip_{i}.png")
        recs.append({"id": i + 1, "file_name": f"chip_{i}.png", "width": 160, "height": 128})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [10 + 5 * i, 12, 16, 14]})
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": recs, "annotations": anns, "categories": [{"id": 1, "name": "ship"}]}))
    return path


def step_dataset(s: Smoke) -> str:
    folder = s.work / f"dataset-{s.variant}"
    shutil.rmtree(folder, ignore_errors=True)
    ann = _coco(folder)
    store, out = folder / "project.db", folder / "export"
    s.run("dataset", "import-coco", ann, "--images", folder / "images", "--store", store)
    s.run("dataset", "generate", "--store", store, "--seed", "1")
    s.run("dataset", "export", "--store", store, "--format", "sharegpt", "--out", out, "--status", "any")
    items = sum(len(json.loads(p.read_text())) for p in out.glob("sarlang*.json"))
    if items == 0:
        raise Failed("the export holds no items")
    return f"import-coco, generate, export: {items} items"


def step_similarity(s: Smoke) -> str:
    store = s.work / f"dataset-{s.variant}" / "project.db"
    r = s.run("dataset", "similarity", "--store", store, ok=False)
    if s.variant == "field":
        if r.returncode == 1 and "full variant" in r.stderr:
            return "refused as it should (needs the full variant)"
        raise Failed(f"expected 'needs the full variant', got exit {r.returncode}: {r.stderr[-200:]}")
    if r.returncode != 0:
        raise Failed(r.stderr.strip()[-200:])
    return r.stdout.strip().splitlines()[0][:80] if r.stdout.strip() else "ok"


def step_score_vqa(s: Smoke) -> str:
    rows = [{"question": "How many ships?", "label": "2", "predict": "2", "type": "counting"},
            {"question": "Is there a ship?", "label": "yes", "predict": "Yes.", "type": "identification"},
            {"question": "What is it?", "label": "ship", "predict": "aircraft", "type": "classification"}]
    path = s.work / "generated_predictions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = json.loads(s.run("bench", "score-vqa", path).stdout)
    if out.get("n") != 3 or out.get("correct") != 2:
        raise Failed(f"expected 2 of 3 correct, got {out}")
    return "2 of 3 correct"


def step_gui_screenshot(s: Smoke) -> str:
    shot = s.work / f"gui-{s.variant}.png"
    s.run(s.sample, "--screenshot", shot, program="sarlang", timeout=300)
    if not shot.is_file() or shot.stat().st_size < 20_000:
        raise Failed(f"{shot} missing or nearly empty")
    return f"{shot.name}: {shot.stat().st_size // 1024} KiB"


STEPS: List[Callable[[Smoke], str]] = [
    step_version, step_info, step_preprocess, step_ask_torch, step_export_onnx, step_ask_onnx, step_explain,
    step_self_test, step_dataset, step_similarity, step_score_vqa, step_gui_screenshot,
]


def run_all(s: Smoke) -> List[dict]:
    results = []
    for fn in STEPS:
        name, t0 = fn.__name__[5:].replace("_", "-"), time.monotonic()
        try:
            status, detail = "ok", fn(s)
        except Skipped as exc:
            status, detail = "skipped", str(exc)
        except (Failed, subprocess.TimeoutExpired, OSError, ValueError) as exc:
            status, detail = "FAIL", str(exc)
        secs = time.monotonic() - t0
        results.append({"step": name, "status": status, "detail": detail, "seconds": round(secs, 1)})
        print(f"{status:<7} {s.variant} {name}: {detail} ({secs:.1f} s)", flush=True)
    (s.work / f"smoke-{s.variant}.json").write_text(json.dumps(results, indent=1))
    return results


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="the built folder (dist/<variant>/sarlang-studio)")
    p.add_argument("--variant", choices=("full", "field"), required=True)
    p.add_argument("--tiny", type=Path, help="a tiny model folder (sarlang_core.vlm.tiny.build_tiny_qwen2_5_vl)")
    p.add_argument("--work", type=Path, default=Path("build/smoke"), help="scratch folder (kept for a look)")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if not (args.folder / "sarlang-cli").is_file():
        print(f"smoke: {args.folder} holds no sarlang-cli: build first", file=sys.stderr)
        return 2
    # the programs run in --work: every path they are given must be absolute
    tiny = args.tiny.resolve() if args.tiny else None
    results = run_all(Smoke(args.folder.resolve(), args.variant, args.work.resolve(), tiny))
    failed = [r["step"] for r in results if r["status"] == "FAIL"]
    print(f"smoke {args.variant}: " + (f"FAILED ({', '.join(failed)})" if failed else "passed"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())

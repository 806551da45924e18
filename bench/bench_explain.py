"""Per-word maps: one forward pass for the whole answer and one backward per word, against one
forward + backward per word; and, with --localisation, the pointing game of each method on the
toy that tests/core/test_explain_localisation.py trains.

Speed: the tiny Qwen2.5-VL (built at run time), a 20-word answer given as text (teacher forcing),
an image of --size px square, fp32 on the CPU. "shared" is ``explain_answer`` for all words at
once; "independent" is 20 calls each explaining one word (each with its own forward pass). Both
interleaved in every repeat; medians over --repeats.

With --real-arch the model is a randomly initialised Qwen2.5-VL of the real 3B architecture
(bench/gpu_train_compare.py's builder; bf16 on a GPU, ~7.5 GB of weights) and the image 1024 x 1024
(1,369 visual tokens): the GPU figure the issue asks for (seconds per word). Needs a CUDA GPU in
practice: on 2 CPU cores one pass takes minutes and ~30 GB.

Run: .venv/bin/python bench/bench_explain.py [--size 448] [--repeats 7] [--threads 2] [--localisation]
     .venv/bin/python bench/bench_explain.py --real-arch --size 1024 --repeats 3      (GPU machine)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine  # noqa: E402

ANSWER = ("The harbor has three ships near two long piers while a bridge crosses over "
          "bright buildings dark fields and cranes")


def speed(args, folder: Path) -> None:
    from sarlang_core.explain import explain_answer
    from sarlang_core.vlm.backend import ChatTurn
    from sarlang_core.vlm.local import LocalBackend
    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl

    if args.real_arch:
        from gpu_train_compare import build_model

        info = build_model(folder / "qwen2.5-vl-3b-arch", tiny=False, real_vocab=False, wheels=Path(".whl-lf"))
        print(f"random Qwen2.5-VL-3B architecture: {info['parameters']:,} parameters, {info['dtype']}")
        backend = LocalBackend(folder / "qwen2.5-vl-3b-arch")
    else:
        backend = LocalBackend(build_tiny_qwen2_5_vl(folder / "tiny"), device="cpu")
    backend.load()
    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.random((args.size, args.size)) * 255).astype(np.uint8)).convert("RGB")
    inputs = backend.prepare_inputs(image, [ChatTurn("user", "Describe the image in detail.")])
    ids = backend.processor.tokenizer(ANSWER, add_special_tokens=False)["input_ids"]
    words = ANSWER.split()
    assert len(words) == 20 and len({w.lower() for w in words}) == 20

    def sync():
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def run(method, chosen=None):
        return explain_answer(backend.model, backend.processor, backend.family, inputs, ids, image_size=image.size,
                              method_name=method, words=chosen)

    print(f"{machine()} · torch threads {args.threads} · device {backend.device} {backend.dtype}")
    name = "Qwen2.5-VL-3B arch" if args.real_arch else "tiny Qwen2.5-VL"
    print(f"{name}, {args.size} x {args.size} px ({inputs['pixel_values'].shape[0] // 4} visual tokens), "
          f"20-word answer ({len(ids)} tokens), medians of {args.repeats}")
    for method in ("gradcam", "gradxinput", "attention"):
        shared, independent = [], []
        run(method), run(method, [words[0]])        # warm-up
        sync()
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run(method)
            sync()
            shared.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for w in words:
                run(method, [w])
            sync()
            independent.append(time.perf_counter() - t0)
        s, i = statistics.median(shared), statistics.median(independent)
        print(f"  {method:<11} all 20 words: shared pass {s * 1000:7.1f} ms ({s / 20 * 1000:6.1f} ms/word) · "
              f"20 independent passes {i * 1000:7.1f} ms · {i / s:4.1f}x")


def localisation(folder: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "loc", Path(__file__).resolve().parents[1] / "tests" / "core" / "test_explain_localisation.py")
    loc = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(loc)

    class Factory:
        def mktemp(self, name):
            p = folder / name
            p.mkdir()
            return p

    gen = loc.trained.__wrapped__(Factory()) if hasattr(loc.trained, "__wrapped__") else None
    if gen is None:
        print("localisation: cannot build the toy outside pytest")
        return
    t0 = time.perf_counter()
    backend, held_out = next(gen)
    print(f"localisation toy trained in {time.perf_counter() - t0:.1f} s (150 LoRA steps, batch 4)")
    share = None
    for method in ("gradcam", "gradxinput", "attention"):
        results = loc._maps(backend, held_out, method)
        hits = loc._pointing(results, lambda r: r.words[0].peak_cell)
        share = float(np.mean([loc._cell_hits(r, box).mean() for r, box in results]))
        print(f"  pointing game, {method:<11}: {hits:.2f} of {len(held_out)} held-out ships "
              f"(random map: {share:.2f}, the ship's share of the grid)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=448)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--localisation", action="store_true")
    ap.add_argument("--real-arch", action="store_true", help="the real Qwen2.5-VL-3B architecture (GPU)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        speed(args, Path(tmp))
        if args.localisation:
            localisation(Path(tmp))


if __name__ == "__main__":
    main()

"""`sarlang-cli explain`: per-word maps of an answer about a scene (Grad-CAM and kin).

    sarlang-cli explain scene.tif "How many ships are there?" --model models/qwen2.5-vl-3b \
        --adapter models/sarlang-lora --region 512,300,256,256 --words ships --out maps/

writes maps/words.json, maps/NN_word.tif (float32, the scene's CRS and transform, nodata outside
the crop) and maps/NN_word.png (the image sent with the map on it) for each word.
"""

from __future__ import annotations

import sys

from .common import ProgressBar, parse_band, parse_region


def add_parsers(sub) -> None:
    cmd = sub.add_parser("explain", help="per-word maps (Grad-CAM) of an answer about a scene or a region")
    cmd.add_argument("scene")
    cmd.add_argument("question")
    cmd.add_argument("--answer", help="explain this text instead of generating the answer (teacher forcing)")
    cmd.add_argument("--model", help="registered model name or model folder (a local model: maps need gradients)")
    cmd.add_argument("--adapter", help="LoRA adapter folder")
    cmd.add_argument("--base", action="store_true", help="with --adapter: the base model's maps (adapter off)")
    cmd.add_argument("--registry", help="model registry JSON")
    cmd.add_argument("--endpoint", help="an OpenAI-compatible server: refused with the reason (no gradients)")
    cmd.add_argument("--region", metavar="X,Y,W,H", help="explain about this region (full-resolution pixels)")
    cmd.add_argument("--pipeline", metavar="FILE.json|paper", default="paper",
                     help="preprocessing recipe (default: the paper's chain)")
    cmd.add_argument("--band", help="band index or polarisation name")
    cmd.add_argument("--method", choices=("gradcam", "gradxinput", "attention"), default="gradcam")
    cmd.add_argument("--words", default="all", metavar="all|W1,W2", help="which words of the answer (default: all)")
    cmd.add_argument("--max-new-tokens", type=int, default=128)
    cmd.add_argument("--max-pixels", type=int, default=1024 * 1024, help="pixel budget of the image sent")
    cmd.add_argument("--colormap", default="inferno", choices=("inferno", "jet", "viridis", "turbo", "magma"))
    cmd.add_argument("--opacity", type=float, default=0.6)
    cmd.add_argument("--threshold", type=float, default=0.0, help="map values below this are left clear")
    cmd.add_argument("--out", required=True, metavar="DIR", help="output folder")
    cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    cmd.set_defaults(handler=cmd_explain)


def cmd_explain(args) -> int:
    from ..errors import SarlangError
    from ..preprocess.pipeline import Pipeline
    from ..services import SceneSession
    from ..services.ask import AskRequest
    from ..services.explain import ExplainRequest, explain_scene, explanation_unavailable, write_outputs
    from ..services.models import GenerationConfig, open_backend

    if not 0.0 <= args.opacity <= 1.0 or not 0.0 <= args.threshold <= 1.0:
        raise SarlangError("--opacity and --threshold take values from 0 to 1")
    pipeline = Pipeline() if args.pipeline in ("paper", "", None) else Pipeline.load(args.pipeline)
    if args.band is not None:
        pipeline = pipeline.with_(band=parse_band(args.band))
    region = parse_region(args.region) if args.region else None
    words = None if args.words.strip().lower() in ("", "all") else tuple(args.words.split(","))
    ask = AskRequest(args.question, source="region" if region else "scene", rect=region, pipeline=pipeline,
                     max_pixels=args.max_pixels, config=GenerationConfig(max_new_tokens=args.max_new_tokens))
    request = ExplainRequest(ask, answer=args.answer, method=args.method, words=words, adapter=not args.base)
    backend = open_backend(args.model, adapter=args.adapter, registry=args.registry, endpoint=args.endpoint)
    reason = explanation_unavailable(backend)
    if reason:
        raise SarlangError(reason)
    session = SceneSession.open(args.scene)
    try:
        with ProgressBar(args.quiet, unit="step") as progress:
            result = explain_scene(backend, session, request, progress=progress)
        out = write_outputs(result, session.scene, args.out, colormap=args.colormap, opacity=args.opacity,
                            threshold=args.threshold)
        print(result.answer)
        for w in result.words:
            x, y = result.peak_scene(w)
            print(f"{w.word.index:3d} {w.text!r}: peak {w.peak:.4g} at scene pixel ({x:.0f}, {y:.0f})",
                  file=sys.stderr)
        print(f"wrote {out} and {len(result.words)} map(s)", file=sys.stderr)
    finally:
        session.close()
        backend.unload()
    return 0

"""`sarlang-cli models`, `ask` and `caption`: the installed models, and questions about a scene."""

from __future__ import annotations

import json
import sys

from .common import parse_band, parse_region


def add_parsers(sub) -> None:
    for name, help_text in (("ask", "ask a vision-language model about a scene or a region"),
                            ("caption", "caption a scene with the paper's prompt")):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("scene")
        if name == "ask":
            cmd.add_argument("question")
        _add_model_args(cmd)
        cmd.set_defaults(handler=cmd_ask)
    models = sub.add_parser("models", help="list the installed models and check each")
    models.add_argument("--registry", help="registry JSON (default: SARLANG_MODELS, else your models.json "
                        "plus the shipped models/registry.json)")
    models.add_argument("--json", action="store_true", help="print JSON")
    models.set_defaults(handler=cmd_models)


def _add_model_args(cmd) -> None:
    cmd.add_argument("--model", help="registered model name or model folder; with --endpoint the served model's name")
    cmd.add_argument("--adapter", help="LoRA adapter folder (local models)")
    cmd.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://gpu-box:8000/v1 (key: OPENAI_API_KEY)")
    cmd.add_argument("--registry", help="model registry JSON")
    cmd.add_argument("--region", metavar="X,Y,W,H", help="ask about this region (full-resolution pixels)")
    cmd.add_argument("--max-new-tokens", type=int, default=256)
    cmd.add_argument("--temperature", type=float, default=0.0)
    cmd.add_argument("--top-p", type=float, default=1.0)
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--max-pixels", type=int, default=1024 * 1024, help="pixel budget of the image sent")
    cmd.add_argument("--convention", choices=("qwen2.5-vl", "qwen2-vl", "sarlang", "geochat"),
                     help="how the model writes boxes (default: from the model family)")
    cmd.add_argument("--pipeline", metavar="FILE.json", help="preprocessing recipe (default: the paper's chain)")
    cmd.add_argument("--band", help="band index or polarisation name")
    cmd.add_argument("--geojson", metavar="OUT.geojson", help="write the boxes of the answer as GeoJSON")
    cmd.add_argument("--transcript", metavar="OUT.md|OUT.json", help="write the exchange as Markdown or JSON")


def cmd_ask(args) -> int:
    from ..preprocess.pipeline import Pipeline
    from ..services import SceneSession
    from ..services.ask import AskRequest, Conversation, ask_scene, box_line, save_geojson
    from ..services.models import GenerationConfig, open_backend
    from ..vlm.prompts import caption_prompt

    pipeline = Pipeline.load(args.pipeline) if args.pipeline else Pipeline()
    if args.band is not None:
        pipeline = pipeline.with_(band=parse_band(args.band))
    region = parse_region(args.region) if args.region else None
    request = AskRequest(args.question if args.command == "ask" else caption_prompt(),
                         source="region" if region else "scene", rect=region, pipeline=pipeline,
                         max_pixels=args.max_pixels, convention=args.convention,
                         config=GenerationConfig(args.max_new_tokens, args.temperature, args.top_p, args.seed))
    backend = open_backend(args.model, adapter=args.adapter, endpoint=args.endpoint, registry=args.registry)
    session = SceneSession.open(args.scene)
    try:
        conv = Conversation(str(session.scene.path), pipeline)
        for piece in ask_scene(backend, session, conv, request):
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        ex = conv.exchanges[-1]
        for b in ex.boxes:
            print(box_line(b), file=sys.stderr)
        if args.geojson:
            save_geojson(args.geojson, ex.boxes, session.scene)
        if args.transcript:
            conv.save(args.transcript)
    finally:
        session.close()
        backend.unload()
    return 0


def cmd_models(args) -> int:
    from ..services.models import check_models

    rows = check_models(args.registry)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    elif not rows:
        print("no models registered: see models/README.md")
    else:
        for r in rows:
            print(r.describe())
    return 0 if all(r.ok for r in rows) else 1

"""`sarlang-cli export-onnx`: a model (+ its LoRA adapter, merged) for ONNX Runtime (the field build)."""

from __future__ import annotations

import json

from .common import ProgressBar, stop_on_signals


def add_parsers(sub) -> None:
    cmd = sub.add_parser("export-onnx", help="export a model (adapter merged) for ONNX Runtime: chat without torch",
                         description="Writes vision.onnx, embed.onnx, decoder.onnx (with a KV cache), the tokenizer "
                         "and chat template, and sarlang_onnx.json into a new folder, after checking ONNX Runtime "
                         "against torch. `ask`, `caption`, benchmarks and the GUI run such a folder on ONNX Runtime "
                         "(CUDA when it starts, else the CPU). Qwen2.5-VL models.")
    cmd.add_argument("model", help="model folder or registered model name (its adapter comes along)")
    cmd.add_argument("--adapter", help="LoRA adapter folder to merge in")
    cmd.add_argument("--out", required=True, metavar="DIR", help="new (or empty) folder for the export")
    cmd.add_argument("--register", metavar="NAME", help="also add the export to your model registry as NAME")
    cmd.add_argument("--registry", help="model registry JSON (default: SARLANG_MODELS, else your models.json)")
    cmd.add_argument("--quiet", action="store_true", help="no progress bars")
    cmd.set_defaults(handler=cmd_export_onnx)


def cmd_export_onnx(args) -> int:
    from ..progress import CancelToken
    from ..services.models import export_onnx_model

    cancel = CancelToken()
    with stop_on_signals(cancel), ProgressBar(args.quiet, unit="step") as progress:
        done = export_onnx_model(args.model, args.out, adapter=args.adapter, register_as=args.register,
                                 registry=args.registry, progress=progress, cancel=cancel)
    print(json.dumps(done, indent=2))
    return 0

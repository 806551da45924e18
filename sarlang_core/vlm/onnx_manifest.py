"""The folder an ONNX export writes, and the manifest (``sarlang_onnx.json``) that says what is in it.

    sarlang_onnx.json   format, app version, family, source model/adapter, token ids, sizes, check
    vision.onnx         pixel patches (+ their positions and windows) -> image tokens
    embed.onnx          token ids -> embeddings
    decoder.onnx        embeddings, M-RoPE positions, mask, past keys/values -> last logits, presents
    tokenizer.json, chat_template.jinja      the text side (read with tokenizers + jinja2)

Read here without onnxruntime or torch (milliseconds): ``inspect_model`` and the registry use it.
``FORMAT`` changes whenever the graphs' inputs or the manifest change; an export of another
format is refused with the command that makes a new one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import ModelError

MANIFEST = "sarlang_onnx.json"
FORMAT = 1
GRAPHS = ("vision", "embed", "decoder")
TEXT_FILES = ("tokenizer.json", "chat_template.jinja")
EXPORTABLE = {"qwen2_5_vl": "Qwen2.5-VL"}


@dataclass(frozen=True)
class OnnxManifest:
    folder: Path
    data: Dict[str, Any]

    @property
    def family(self) -> str:
        return str(self.data["family"])

    @property
    def source(self) -> Dict[str, Any]:
        return dict(self.data.get("source") or {})

    @property
    def text(self) -> Dict[str, int]:
        return dict(self.data["text"])

    @property
    def vision(self) -> Dict[str, Any]:
        return dict(self.data["vision"])

    @property
    def tokens(self) -> Dict[str, Any]:
        return dict(self.data["tokens"])

    @property
    def image(self) -> Dict[str, Any]:
        return dict(self.data["image"])

    @property
    def eos_ids(self) -> List[int]:
        eos = self.tokens.get("eos")
        return [int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None]

    def graph(self, name: str) -> Path:
        return self.folder / f"{name}.onnx"

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.folder.rglob("*") if f.is_file())


def is_onnx_folder(folder: Path) -> bool:
    return (folder / MANIFEST).is_file()


def stray_onnx_files(folder: Path) -> bool:
    """ONNX graphs without our manifest (an optimum or onnxruntime-genai export, say)."""
    return any(folder.glob("*.onnx"))


def read_manifest(folder: Path) -> OnnxManifest:
    """The export's manifest, checked: our format, a family we run, every graph and text file there."""
    from .. import __version__

    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable ({exc}): export the model again with `sarlang-cli export-onnx`") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: not a SARLANG ONNX manifest")
    made_by = data.get("app_version", "an unknown version")
    if data.get("format") != FORMAT:
        raise ModelError(f"{folder}: exported by SARLANG Studio {made_by} in ONNX format {data.get('format')!r}; "
                         f"this version ({__version__}) reads format {FORMAT}: export it again with "
                         f"`sarlang-cli export-onnx MODEL --out DIR`")
    if data.get("family") not in EXPORTABLE:
        raise ModelError(f"{folder}: ONNX export of family {data.get('family')!r}, which this version cannot run")
    for key in ("text", "vision", "tokens", "image"):
        if not isinstance(data.get(key), dict):
            raise ModelError(f"{path}: the {key!r} section is missing: export the model again")
    missing = [f"{g}.onnx" for g in GRAPHS if not (folder / f"{g}.onnx").is_file()]
    missing += [f for f in TEXT_FILES if not (folder / f).is_file()]
    if missing:
        raise ModelError(f"{folder}: the ONNX export is incomplete ({', '.join(missing)} missing): copy the whole "
                         "folder or export it again")
    return OnnxManifest(folder, data)


def describe_source(manifest: OnnxManifest) -> str:
    src = manifest.source
    adapter: Optional[str] = src.get("adapter")
    return f"{src.get('model', '?')}" + (f" + LoRA {adapter} (merged)" if adapter else "")

"""Model folders: what is in one (base model or LoRA adapter, family, size, problems) and the registry.

Only files are read here (config JSON and safetensors *headers*), never tensors, so checking a
folder of a 7 B model takes milliseconds and needs neither torch nor transformers.

Adapter/base matching rule (``check_adapter``):
1. Structure decides. Every LoRA pair in the adapter (``<module>.lora_A`` / ``lora_B``) must name a
   linear layer of the base, and its shapes must fit that layer (A: [r, in], B: [out, r]). Module
   paths are compared after dropping the wrapper names that differ between PEFT and transformers
   versions (``base_model``, ``model``, ``language_model``), so ``model.layers.0.self_attn.q_proj``
   and ``model.language_model.layers.0.self_attn.q_proj`` are the same layer. An adapter made for
   another family (unknown layers) or another size (shapes differ) is refused with a ModelError.
2. Names only advise. When ``base_model_name_or_path``'s last component differs from the base
   folder's name the adapter is still accepted (people rename folders) but ``problems`` says so.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from ..errors import ModelError

PathLike = Union[str, os.PathLike]

SUPPORTED_FAMILIES = {"qwen2_5_vl": "Qwen2.5-VL", "qwen2_vl": "Qwen2-VL", "llava": "LLaVA-1.5"}
_WRAPPERS = {"base_model", "model", "language_model"}


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    family: Optional[str]            # config.json model_type; for an adapter, its base's (None if unchecked)
    kind: str                        # "base" | "adapter" | "onnx" (an export for ONNX Runtime)
    base_model: Optional[str]        # adapters: adapter_config.json base_model_name_or_path
    size_bytes: int
    problems: List[str] = field(default_factory=list)   # things that do not stop loading, worth a look

    @property
    def name(self) -> str:
        return self.path.name


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data


def _folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def safetensors_header(path: Path) -> Dict[str, dict]:
    """The tensor table of a .safetensors file ({name: {"dtype", "shape", "data_offsets"}}),
    read from its JSON header only; a ModelError if the file is not safetensors or is truncated."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ModelError(f"{path}: not a safetensors file (too short): download it again")
            (n,) = struct.unpack("<Q", raw)
            if n > 100_000_000:
                raise ModelError(f"{path}: not a safetensors file (bad header)")
            header = json.loads(fh.read(n))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable safetensors header ({exc}): download it again") from exc
    header.pop("__metadata__", None)
    end = max((t["data_offsets"][1] for t in header.values()), default=0)
    if path.stat().st_size < 8 + n + end:
        raise ModelError(f"{path}: truncated ({path.stat().st_size} bytes, header says {8 + n + end}): "
                         "the download did not finish")
    return header


def _weight_files(folder: Path) -> List[Path]:
    """The safetensors files a base model's weights live in (every shard present and whole)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
        if not shards:
            raise ModelError(f"{index}: lists no weight shards")
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise ModelError(f"{folder}: {len(missing)} of {len(shards)} weight shards listed in "
                             f"model.safetensors.index.json are missing (first: {missing[0]}): finish the download")
        return [folder / s for s in shards]
    files = sorted(folder.glob("*.safetensors"))
    if files:
        return files
    if any(folder.glob("*.bin")) or any(folder.glob("*.pt")) or any(folder.glob("*.pth")):
        raise ModelError(f"{folder}: only PyTorch .bin/.pt weights: safetensors only (pickled weights can run "
                         "code when loaded). Download the safetensors version or convert the weights")
    raise ModelError(f"{folder}: no weights (*.safetensors) in the folder")


def _canonical(module: str) -> str:
    return ".".join(p for p in module.split(".") if p not in _WRAPPERS)


def _inspect_base(folder: Path, config: dict) -> ModelInfo:
    family = config.get("model_type")
    if family not in SUPPORTED_FAMILIES:
        names = ", ".join(f"{k} ({v})" for k, v in SUPPORTED_FAMILIES.items())
        raise ModelError(f"{folder}: model type {family!r} is not supported (supported: {names})")
    for f in _weight_files(folder):
        safetensors_header(f)  # catches truncated shards
    problems = []
    if not (folder / "tokenizer.json").is_file() and not (folder / "tokenizer.model").is_file():
        problems.append("no tokenizer (tokenizer.json): the model cannot be loaded without it")
    if not (folder / "preprocessor_config.json").is_file() and not (folder / "processor_config.json").is_file():
        problems.append("no preprocessor_config.json: the image processor settings are missing")
    if not any((folder / n).is_file() for n in ("chat_template.json", "chat_template.jinja")):
        tok_cfg = folder / "tokenizer_config.json"
        if not (tok_cfg.is_file() and "chat_template" in _read_json(tok_cfg)):
            problems.append("no chat template: is this a base (non-instruct) model?")
    return ModelInfo(folder, family, "base", None, _folder_size(folder), problems)


def _inspect_adapter(folder: Path, config: dict) -> ModelInfo:
    peft_type = str(config.get("peft_type", "")).upper()
    if peft_type != "LORA":
        raise ModelError(f"{folder}: adapter type {peft_type or 'unknown'!r} is not supported (LoRA only)")
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        if (folder / "adapter_model.bin").is_file():
            raise ModelError(f"{folder}: adapter weights are adapter_model.bin: safetensors only "
                             "(save the adapter with safe_serialization=True)")
        raise ModelError(f"{folder}: adapter_config.json but no adapter_model.safetensors")
    safetensors_header(weights)
    return ModelInfo(folder, None, "adapter", config.get("base_model_name_or_path"), _folder_size(folder), [])


def inspect_model(path: PathLike, *, base: Union[PathLike, ModelInfo, None] = None) -> ModelInfo:
    """What ``path`` holds: a supported base model or a LoRA adapter. Raises ModelError when it
    cannot be used. For an adapter with ``base`` given, also checks that it fits that base."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelError(f"{folder}: not a folder" + ("" if folder.exists() else " (it does not exist)"))
    if (folder / "adapter_config.json").is_file():
        info = _inspect_adapter(folder, _read_json(folder / "adapter_config.json"))
        if base is not None:
            info = check_adapter(info, base if isinstance(base, ModelInfo) else inspect_model(base))
        return info
    from .onnx_manifest import is_onnx_folder, stray_onnx_files

    if is_onnx_folder(folder):
        return _inspect_onnx(folder)
    if not (folder / "config.json").is_file():
        if stray_onnx_files(folder):
            raise ModelError(f"{folder}: ONNX graphs without sarlang_onnx.json: not made by `sarlang-cli export-onnx` "
                             "(exports of other tools are not read); export the model folder with it")
        raise ModelError(f"{folder}: not a model (no config.json, adapter_config.json or sarlang_onnx.json): "
                         "a transformers model folder, a LoRA adapter or an ONNX export is expected")
    return _inspect_base(folder, _read_json(folder / "config.json"))


def _inspect_onnx(folder: Path) -> ModelInfo:
    from .onnx_manifest import describe_source, read_manifest

    manifest = read_manifest(folder)
    return ModelInfo(folder, manifest.family, "onnx", describe_source(manifest), manifest.size_bytes(), [])


def _base_shapes(base: ModelInfo) -> Dict[str, list]:
    shapes = {}
    for f in _weight_files(base.path):
        for name, t in safetensors_header(f).items():
            if name.endswith(".weight"):
                shapes[_canonical(name[: -len(".weight")])] = t["shape"]
    return shapes


def _lora_pairs(adapter: ModelInfo) -> Dict[str, dict]:
    """{canonical module: {"A": shape, "B": shape}} from the adapter's safetensors header."""
    pairs: Dict[str, dict] = {}
    for name, t in safetensors_header(adapter.path / "adapter_model.safetensors").items():
        parts = name.split(".")
        for ab in ("A", "B"):
            key = f"lora_{ab}"
            if key in parts:
                module = ".".join(parts[: parts.index(key)])
                pairs.setdefault(_canonical(module), {})[ab] = t["shape"]
    return pairs


def check_adapter(adapter: ModelInfo, base: ModelInfo) -> ModelInfo:
    """The adapter's info with its base's family, or a ModelError if it was made for another base
    (rule in the module docstring)."""
    if adapter.kind != "adapter":
        raise ModelError(f"{adapter.path}: is a {adapter.kind} model, not an adapter")
    if base.kind != "base":
        raise ModelError(f"{base.path}: an adapter cannot be the base of another adapter")
    shapes, pairs = _base_shapes(base), _lora_pairs(adapter)
    if not pairs:
        raise ModelError(f"{adapter.path}: the adapter holds no LoRA weights")
    unknown, misfit = [], []
    for module, ab in sorted(pairs.items()):
        w = shapes.get(module)
        if w is None or len(w) < 2:
            unknown.append(module)
        # A is (rank, in, *kernel) and B (out, rank, *1s) for linear and convolutional layers alike
        elif ("A" in ab and ab["A"][1] != w[1]) or ("B" in ab and ab["B"][0] != w[0]):
            misfit.append(f"{module} (base {w[0]}x{w[1]}, adapter A {ab.get('A')} B {ab.get('B')})")
    trained_on = Path(str(adapter.base_model or "?").rstrip("/")).name
    if unknown or misfit:
        what = (f"{len(unknown)} of its layers do not exist in the base (e.g. {unknown[0]})" if unknown
                else f"{len(misfit)} layer shapes differ (e.g. {misfit[0]})")
        raise ModelError(f"{adapter.path}: this adapter was made for another base model ({trained_on!r}), "
                         f"not {base.path.name!r} ({SUPPORTED_FAMILIES.get(base.family or '', base.family)}): {what}")
    problems = list(adapter.problems)
    if trained_on.lower() != base.path.name.lower():
        problems.append(f"adapter was trained on {trained_on!r}; base folder is {base.path.name!r} "
                        "(layers and shapes match)")
    if any(m.startswith(("visual.", "vision_tower.")) for m in pairs):
        problems.append("adapter also changes the vision encoder: vLLM ignores those weights (merge before serving)")
    return replace(adapter, family=base.family, problems=problems)


# ---------------------------------------------------------------- registry

REPO_REGISTRY = Path(__file__).resolve().parents[2] / "models" / "registry.json"


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    path: Path                       # base model folder (absolute)
    adapter: Optional[Path] = None   # LoRA adapter folder (absolute), if any
    notes: str = ""
    trained: Optional[dict] = None   # made here: {base, dataset, pipeline, config, run} (registry_write)


@dataclass(frozen=True)
class Registry:
    source: Path                     # the registry file (it may not exist: then entries is empty)
    entries: Tuple[RegistryEntry, ...] = ()

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> RegistryEntry:
        return self.entries[i]

    def get(self, name: str) -> RegistryEntry:
        for e in self.entries:
            if e.name == name:
                return e
        known = ", ".join(e.name for e in self.entries) or "none"
        raise ModelError(f"no model named {name!r} in {self.source} (known: {known})")


def user_registry_path() -> Path:
    """The per-user registry: ``<user_config_dir>/sarlang-studio/models.json``."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("sarlang-studio")) / "models.json"


def default_registry_path() -> Path:
    """The registry file that is read first and written to: $SARLANG_MODELS, else the per-user
    ``models.json``. (The repository's or the installed build's models/registry.json is read after
    it and only adds entries: it is never written to, and never hides the user's.)"""
    env = os.environ.get("SARLANG_MODELS")
    if env:
        return Path(env).expanduser()
    return user_registry_path()


def load_registry(path: Optional[PathLike] = None) -> Registry:
    """Read a registry file; relative paths are relative to its folder. A missing default
    registry is an empty one; a missing file that was asked for by name is a ModelError.

    Without ``path`` or $SARLANG_MODELS: the per-user registry, then the entries of the shipped
    models/registry.json whose names the user's does not already use."""
    if path is None and not os.environ.get("SARLANG_MODELS"):
        user = _load_registry_file(user_registry_path(), must_exist=False)
        if not REPO_REGISTRY.is_file() or REPO_REGISTRY.resolve() == user.source.resolve():
            return user
        mine = {e.name for e in user.entries}
        shipped = [e for e in _load_registry_file(REPO_REGISTRY, must_exist=False).entries if e.name not in mine]
        return Registry(user.source, user.entries + tuple(shipped))
    source = Path(path).expanduser() if path is not None else default_registry_path()
    return _load_registry_file(source, must_exist=True)


def _load_registry_file(source: Path, *, must_exist: bool) -> Registry:
    if not source.is_file():
        if must_exist:
            raise ModelError(f"{source}: model registry not found")
        return Registry(source)
    data = _read_json(source)
    items = data.get("models")
    if not isinstance(items, list):
        raise ModelError(f'{source}: expected {{"models": [...]}}')
    entries, seen = [], set()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("path"), str):
            raise ModelError(f"{source}: entry {i + 1} needs a 'name' and a 'path' (strings)")
        if item["name"] in seen:
            raise ModelError(f"{source}: the name {item['name']!r} is used twice")
        seen.add(item["name"])

        def resolve(p: str) -> Path:
            q = Path(p).expanduser()
            return q if q.is_absolute() else (source.parent / q).resolve()

        adapter = item.get("adapter")
        trained = item.get("trained")
        entries.append(RegistryEntry(item["name"], resolve(item["path"]), resolve(adapter) if adapter else None,
                                     str(item.get("notes", "")), trained if isinstance(trained, dict) else None))
    return Registry(source, tuple(entries))


class RegistryCheck(NamedTuple):
    """One checked entry; unpacks as ``(entry, result)``, result a ModelInfo or a ModelError."""
    entry: RegistryEntry
    result: Union[ModelInfo, ModelError]

    @property
    def ok(self) -> bool:
        return isinstance(self.result, ModelInfo)

    def to_dict(self) -> dict:
        e, r = self.entry, self.result
        d: Dict[str, Any] = {"name": e.name, "path": str(e.path), "adapter": str(e.adapter) if e.adapter else None,
                             "notes": e.notes, "trained": e.trained, "ok": self.ok}
        if isinstance(r, ModelInfo):
            d.update(family=r.family, kind=r.kind, base_model=r.base_model, size_bytes=r.size_bytes,
                     problems=list(r.problems))
        else:
            d["error"] = str(r)
        return d

    def describe(self) -> str:
        """One line (plus indented problems) for a terminal."""
        e, r = self.entry, self.result
        if not isinstance(r, ModelInfo):
            return f"FAIL {e.name}: {r}"
        fam = SUPPORTED_FAMILIES.get(r.family or "", r.family)
        if r.kind == "onnx":
            fam = f"{fam} ONNX export of {r.base_model}"
        adapter = f" + LoRA {e.adapter.name}" if e.adapter else ""
        size = f"{r.size_bytes / 2**30:.2f} GiB" if r.size_bytes >= 2**30 else f"{r.size_bytes / 2**20:.1f} MiB"
        lines = [f"ok   {e.name}: {fam}, {e.path.name}{adapter}, {size}"
                 + (f" ({e.notes})" if e.notes else "")]
        lines += [f"       - {p}" for p in r.problems]
        return "\n".join(lines)


def check_registry(registry: Union[Registry, PathLike, None] = None) -> List[RegistryCheck]:
    """Inspect every entry: (entry, ModelInfo of what it loads, the adapter's when it has one and
    its base's problems prefixed "base: ") or (entry, the ModelError that stops it)."""
    reg = registry if isinstance(registry, Registry) else load_registry(registry)
    out: List[RegistryCheck] = []
    for entry in reg:
        try:
            info = inspect_model(entry.path)
            if info.kind == "adapter":
                raise ModelError(f"{entry.path}: is an adapter; put it under 'adapter' with its base as 'path'")
            if info.kind == "onnx" and entry.adapter is not None:
                raise ModelError(f"{entry.path}: an ONNX export has its adapter merged in: drop 'adapter'")
            if entry.adapter is not None:
                ad = inspect_model(entry.adapter, base=info)
                info = replace(ad, problems=ad.problems + [f"base: {p}" for p in info.problems])
            out.append(RegistryCheck(entry, info))
        except ModelError as exc:
            out.append(RegistryCheck(entry, exc))
    return out

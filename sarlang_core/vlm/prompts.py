"""The paper's prompts and its seven applications as one-click actions.

Evaluation prompts, as the SARLANG-1M paper gives them (section "Experiments"):
  captioning: "Describe the content of this image in one sentence."
  VQA:        "Question: {question}. Answer the question concisely."
The VQA template is applied literally (a question ending in '?' gives '?.'), because that is what
the benchmark numbers were measured with. The paper prints the caption prompt inside a sentence
("... in one sentence," while ...); the comma is that sentence's, the prompt ends with a period.

The seven applications (paper, "Supported Sub-tasks"): image description, object
identification, object classification, instance counting, region referring, object positioning,
and others (general questions). Question texts follow the SARLANG-1M templates; '{category}s'
is pluralised by adding 's', as the dataset templates do ("How many {cat}s are there ...").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from ..errors import RequestError

CAPTION_PROMPT = "Describe the content of this image in one sentence."
VQA_TEMPLATE = "Question: {question}. Answer the question concisely."
SARDET_CLASSES = ("tank", "car", "aircraft", "harbor", "bridge", "ship")
# prepended by the authors when subsets are mixed (FIELD_NOTES, "SARLANG-1M data")
CLASSES_PREFIX = "The classes are: tank, car, aircraft, harbor, bridge, ship."
POSITION_ANSWERS = ("top", "center", "bottom", "left", "right")


def _with_classes(question: str, with_classes: bool) -> str:
    return f"{CLASSES_PREFIX} {question}" if with_classes else question


def caption_prompt() -> str:
    """The paper's captioning prompt."""
    return CAPTION_PROMPT


def vqa_prompt(question: str, *, with_classes: bool = False) -> str:
    """The paper's VQA prompt around ``question`` (stripped). ``with_classes`` prepends the class
    list to the question, inside the template, as in the mixed-subset training questions."""
    q = "" if question is None else str(question).strip()
    if not q:
        raise RequestError("the question is empty")
    return VQA_TEMPLATE.format(question=_with_classes(q, with_classes))


def format_region(region: Sequence[float]) -> str:
    """[x, y, w, h] in original-image pixels with one decimal: '[56.0, 191.0, 112.0, 122.0]'."""
    try:
        vals = [float(v) for v in region]
    except (TypeError, ValueError):
        raise RequestError(f"a region is [x, y, w, h], got {region!r}") from None
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise RequestError(f"a region is four finite numbers [x, y, w, h], got {region!r}")
    if vals[2] <= 0 or vals[3] <= 0:
        raise RequestError(f"a region needs a positive width and height, got {region!r}")
    # round first so that -0.04 prints as 0.0, not -0.0
    return "[" + ", ".join(f"{round(v, 1) + 0.0:.1f}" for v in vals) + "]"


def _category(text: Optional[str]) -> str:
    c = "" if text is None else " ".join(str(text).split()).lower()
    if not c:
        raise RequestError("name an object class (e.g. ship)")
    # 'ships' typed for a known class: the template adds the 's' itself
    if c.endswith("s") and c[:-1] in SARDET_CLASSES:
        c = c[:-1]
    return c


@dataclass(frozen=True)
class Action:
    """One application as a button. ``template`` holds {category}, {region} or {question}."""

    key: str
    label: str
    template: str
    needs_region: bool
    needs_input: bool
    input_hint: str = ""
    is_caption: bool = False

    def question(self, text: Optional[str] = None, region: Optional[Sequence[float]] = None) -> str:
        """The raw question (what the SARLANG-1M data holds), before the evaluation template.

        ``text``: the class name (identify, count, position) or the question (ask);
        ``region``: [x, y, w, h] in original-image pixels (refer; see boxes.from_scene 'sarlang')."""
        if self.is_caption:
            return self.template
        fields = {}
        if self.needs_input:
            if "{category}" in self.template:
                fields["category"] = _category(text)
            else:
                q = "" if text is None else str(text).strip()
                if not q:
                    raise RequestError("the question is empty")
                fields["question"] = q
        if self.needs_region:
            if region is None:
                raise RequestError("draw a region first")
            fields["region"] = format_region(region)
        return self.template.format(**fields)

    def prompt(self, text: Optional[str] = None, region: Optional[Sequence[float]] = None, *,
               with_classes: bool = False, paper_template: bool = True) -> str:
        """What is sent to the model: the caption prompt, or the question in the paper's VQA
        template (``paper_template=False``: the raw question, as in fine-tuning data)."""
        q = self.question(text, region)
        if self.is_caption:
            return q
        return vqa_prompt(q, with_classes=with_classes) if paper_template else _with_classes(q, with_classes)


ACTIONS: Tuple[Action, ...] = (
    Action("describe", "Describe", CAPTION_PROMPT, False, False, is_caption=True),
    Action("identify", "Is there…?", "Are there any {category}s in the image?", False, True, "object class"),
    Action("classify", "Main object", "What is the main object in the image?", False, False),
    Action("count", "Count", "How many {category}s are there in the image?", False, True, "object class"),
    Action("position", "Where?", "Where are most {category}s positioned within the image?", False, True,
           "object class"),
    Action("refer", "In region?", "What is the object present in the area {region}?", True, False),
    Action("ask", "Ask", "{question}", False, True, "question"),
)


def action(key: str) -> Action:
    for a in ACTIONS:
        if a.key == key:
            return a
    raise RequestError(f"unknown action {key!r}; known: {', '.join(a.key for a in ACTIONS)}")

"""Where an answer came from: per-word maps over the image a vision-language model was shown.

    from sarlang_core.explain import explain_answer, METHODS
    result = explain_answer(model, processor, family, inputs, answer_ids, image_size=(w, h))

Methods (``methods.py``): Grad-CAM on the visual tokens, gradient x input on the pixels, and
attention to the image; model families and their visual-token layout in ``layout.py``; hooks
as context managers that always release (``hooks.py``); words and their sub-word tokens
(``words.py``); placing a map on the scene and writing it out (``maps.py``).
"""

from .engine import Explanation, WordMap, explain_answer, select_words
from .layout import LAYOUTS, layout_for
from .methods import METHODS, method
from .words import Word, answer_words

__all__ = ["Explanation", "WordMap", "Word", "METHODS", "LAYOUTS", "answer_words", "explain_answer", "layout_for",
           "method", "select_words"]

"""Per-word maps of the chat's answers: links on the words, the maps computed on the model lane
(services.explain.explain_exchange, all words of an answer in one call), cached, and the chosen
word's map drawn over the scene views with its legend in the explain panel."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app import workers
from sarlang_core.errors import CancelledError, SarlangError
from sarlang_core.progress import CancelToken
from sarlang_core.services.explain import (
    METHOD_CHOICES,
    SERVED_NOTE,
    explain_exchange,
    explanation_unavailable,
    text_words,
)

from .overlay import HeatOverlay, heat_rgba, rect_of, upsample
from .panel import HINT, ExplainPanel
from .words import align, answer_html, chat_links, href, parse_href

SERVED_LINE = "Per-word maps need a local model: a served model gives no gradients"
CANCELLED = "Cancelled: the chat and the scene are as they were."
CLICK_HINT = "Click a word of the answer: its map shows where in the image it came from."


def explain_with_records(backend, session, conversation, index: int, *, method: str, adapter: bool,
                         progress=None, cancel=None):
    """The maps of answer ``index`` and each word's record (its peak in scene pixels, map
    coordinates and degrees): all of it on the model lane, none on the UI thread."""
    result = explain_exchange(backend, session, conversation, index, method=method, adapter=adapter,
                              progress=progress, cancel=cancel)
    return result, {w.word.index: result.record(w, session.scene) for w in result.words}


class ExplainWiring(QObject):
    mapsReady = Signal(object)        # the SceneExplanation of the answer now listed (computed or cached)
    wordShown = Signal(int)           # the word (text_words index) whose map is on the scene
    failed = Signal(str)              # a message the panel shows: the maps could not be made
    cancelled = Signal()
    exported = Signal(str)            # a file written

    def __init__(self, window, chat, panel: ExplainPanel, dock=None):
        super().__init__(window)
        self.win, self.chat, self.panel, self.dock = window, chat, panel, dock
        self.overlays = [HeatOverlay(v) for v in window.compare.views()]
        self.cache: dict = {}             # (exchange index, method, adapter on) -> (SceneExplanation, records)
        self.result = None                # the SceneExplanation listed in the panel
        self.records: dict = {}           # its words' records (WordMap index -> SceneExplanation.record)
        self.key = None                   # its cache key
        self.maps: dict = {}              # its WordMaps by the answer's word index
        self.word = None                  # the word whose map is shown (None: no overlay)
        self.heat = None                  # that map upsampled over its rectangle (float32)
        self.conversation = None          # the conversation the links and the cache belong to
        self._request = 0
        self._cancel = None               # the CancelToken of the computation in flight
        self._wanted = None               # (key, word) the computation in flight is for
        self._noted = None                # (conversation, backend) a line under an answer was shown for
        chat.panel.view.anchorClicked.connect(lambda url: self.open_link(url.toString()))
        chat.controller.finished.connect(self._answer_finished)
        chat.controller.loaded.connect(lambda _ident: self.model_changed())
        chat.controller.loadFailed.connect(lambda _msg: self.model_changed())
        chat.panel.newChatRequested.connect(self.reset)
        window.sceneOpened.connect(lambda _path: self.reset())
        panel.wordSelected.connect(lambda w: self.explain_word(self.key[0], w) if self.key else None)
        panel.methodChanged.connect(lambda _m: self._recompute())
        panel.adapterChanged.connect(lambda _on: self._recompute())
        panel.styleChanged.connect(self._restyle)
        panel.cancelRequested.connect(self.cancel)
        panel.clearRequested.connect(self.clear_overlay)
        panel.exportPngRequested.connect(self.export_png)
        panel.exportGeotiffRequested.connect(self.export_geotiff)

    @property
    def busy(self) -> bool:
        return self._cancel is not None

    # -- the chat's answers ---------------------------------------------------------------------
    def _answer_finished(self, exchange) -> None:
        """A finished answer: its words become links (a local model), or one plain line says why not."""
        conv = self.chat.conversation
        if conv is None:
            return
        self._follow(conv)
        index = next((i for i, e in enumerate(conv.exchanges) if e is exchange), None)
        backend = self.chat.controller.backend
        reason = explanation_unavailable(backend)
        if reason:
            if self._noted != (id(conv), id(backend)):
                self._noted = (id(conv), id(backend))
                self.chat.panel.link_last_answer([], SERVED_LINE if reason == SERVED_NOTE else
                                                 f"Per-word maps are not available: {reason}")
            return
        if index is not None and exchange.answer == self.chat.panel.last_answer:
            first = self._noted != (id(conv), id(backend))
            self._noted = (id(conv), id(backend))
            self.chat.panel.link_last_answer(chat_links(index, exchange.answer), CLICK_HINT if first else "")

    def _follow(self, conv) -> None:
        """The chat started another conversation (another Pipeline): the old links and maps go."""
        if conv is not self.conversation:
            if self.conversation is not None:
                self.chat.panel.unlink_answers()
            self._drop(HINT)
            self.conversation = conv

    def open_link(self, text: str) -> None:
        target = parse_href(text)
        if target is not None:
            self.explain_word(*target)

    # -- computing ------------------------------------------------------------------------------
    def explain_word(self, index: int, word: int) -> None:
        """Show the map of word ``word`` of answer ``index``: from the cache, or computed with all
        the answer's other words on the model lane."""
        conv, backend = self.chat.conversation, self.chat.controller.backend
        if conv is None or conv is not self.conversation or not 0 <= index < len(conv.exchanges):
            self._tell("That answer is no longer in the chat.")
            return
        reason = explanation_unavailable(backend)
        if reason or self.win.session is None:
            self._tell(reason or "Open a scene first.")
            return
        answer = conv.exchanges[index].answer
        if answer.strip() and not 0 <= word < len(text_words(answer)):
            self._tell(f"Answer {index + 1} has no word {word + 1}.")
            return
        if self.dock is not None:
            self.dock.raise_()
        adapter = self.panel.fine_tuned() if getattr(backend, "adapter_path", None) is not None else True
        key = (index, self.panel.method_name(), adapter)
        if key in self.cache:
            self._use(key, self.cache[key], word)
        elif self._wanted is not None and self._wanted[0] == key:
            self._wanted = (key, word)        # that computation is under way: it shows this word
        else:
            self._start(key, word)

    def _start(self, key, word: int) -> None:
        self._abandon()
        index, method, adapter = key
        self._request += 1
        rid, cancel = self._request, CancelToken()
        self._cancel, self._wanted = cancel, (key, word)
        label = self.panel.method_label()
        self.panel.set_busy(True, f"{label}: answer {index + 1}")
        self.panel.set_message(f"Computing the {label} maps of answer {index + 1} (all its words at once)…")
        workers.submit("model", rid, explain_with_records, self.chat.controller.backend, self.win.session,
                       self.conversation, index, method=method, adapter=adapter, cancel=cancel,
                       on_result=self._computed, on_error=self._failed, on_progress=self._progress)

    def _progress(self, rid, p) -> None:
        if rid == self._request and self._cancel is not None:
            self.panel.set_progress(p.fraction, f"{p.stage} {p.message}".strip())

    def _computed(self, rid, computed) -> None:
        if rid != self._request or self._wanted is None:
            return                                  # cancelled or overtaken: nothing changes
        key, word = self._wanted
        self._cancel = self._wanted = None
        self.panel.set_busy(False)
        self.cache[key] = computed
        self._use(key, computed, word)

    def _failed(self, rid, exc) -> None:
        if rid != self._request or self._wanted is None:
            return
        self._cancel = self._wanted = None
        self.panel.set_busy(False)
        if isinstance(exc, CancelledError):
            self.panel.set_message(CANCELLED)
            self.cancelled.emit()
            return
        self._tell(str(exc) if isinstance(exc, SarlangError) else f"{type(exc).__name__}: {exc}")

    def cancel(self) -> None:
        """Stop the computation in flight; whatever it still delivers is dropped (no change anywhere)."""
        if self._cancel is None:
            return
        self._abandon()
        self.panel.set_busy(False)
        self.panel.set_message(CANCELLED)
        self.cancelled.emit()

    def _abandon(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
        self._request += 1
        self._cancel = self._wanted = None

    def _recompute(self) -> None:
        """Another method or model (base / fine-tuned): the same answer and word again."""
        if self._wanted is not None:               # the answer being computed, else the one listed
            (index, _method, _adapter), word = self._wanted
            self.explain_word(index, word)
        elif self.key is not None:
            self.explain_word(self.key[0], self.word if self.word is not None else min(self.maps, default=0))

    def _tell(self, message: str) -> None:
        self.panel.set_message(message, warning=True)
        self.failed.emit(message)

    # -- showing --------------------------------------------------------------------------------
    def _use(self, key, computed, word: int) -> None:
        result, records = computed
        if result is not self.result:
            answer = self.conversation.exchanges[key[0]].answer
            self.result, self.records, self.key, self.maps = result, records, key, align(answer, result.words)
            top = max((m.peak for m in self.maps.values()), default=0.0) or 1.0
            listed = [(j, m) for j, m in sorted(self.maps.items()) if m.word.content]
            kind = "content words"
            if not listed:                            # an answer of function words only: list them all
                listed, kind = sorted(self.maps.items()), "words"
            self.panel.set_words(f"Answer {key[0] + 1} · {len(listed)} {kind} · peak score",
                                 [(j, m.text, m.peak, m.peak / top) for j, m in listed])
            self.mapsReady.emit(result)
        self.show_word(word)

    def show_word(self, word: int) -> None:
        result, wm = self.result, self.maps.get(word)
        if result is None:
            return
        if wm is None:
            text = next((w.text for w in text_words(result.answer) if w.index == word), f"word {word + 1}")
            self._tell(f"'{text}' has no map: the model's tokens do not spell it in this answer.")
            self.panel.select_word(self.word if self.word is not None else -1)
            return
        self.word, self.heat = word, upsample(result.placement, wm.scores)
        rgba = heat_rgba(self.heat, **self.panel.map_style())
        rect, peak = rect_of(result.placement), result.peak_scene(wm)
        for o in self.overlays:
            o.show(rgba, rect, peak, wm.text)
        self.panel.select_word(word)
        self.panel.set_map_shown(True)
        self.panel.set_answer(answer_html(self.conversation.exchanges[self.key[0]].answer, self.maps, word))
        self._legend(result, wm)
        self.chat.panel.mark_link(href(self.key[0], word))
        self.wordShown.emit(word)

    def _legend(self, result, wm) -> None:
        scene = self.win.session.scene if self.win.session is not None else None
        rec = self.records[wm.word.index]
        top = max((m.peak for m in self.maps.values()), default=0.0)
        x, y = rec["peak_pixel"]
        r, c = wm.peak_cell
        lines = [f"Peak score {wm.peak:.3g} ({wm.peak / top:.0%} of the answer's highest)" if top > 0 else
                 "Peak score 0: this word's map is flat",
                 f"Peak at x {x:,.0f}, y {y:,.0f} px (cell {r + 1}, {c + 1} of {result.placement.rows} × "
                 f"{result.placement.cols})"]
        if rec["peak_map"] is not None:
            crs = getattr(scene, "crs", None)
            lines.append(f"Map {rec['peak_map'][0]:,.1f}, {rec['peak_map'][1]:,.1f}" + (f" ({crs})" if crs else ""))
        if rec["peak_lonlat"] is not None:
            lon, lat = rec["peak_lonlat"]
            lines.append(f"{abs(lat):.5f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.5f}° {'E' if lon >= 0 else 'W'}")
        if result.adapter_used is not None:
            lines.append("Fine-tuned model (adapter on)" if result.adapter_used else "Base model (adapter off)")
        method = dict(METHOD_CHOICES).get(result.method, result.method)
        self.panel.set_legend(f"'{wm.text}' · {method} · answer {self.key[0] + 1}", "\n".join(lines),
                              f"{wm.text}_{result.method}_answer{self.key[0] + 1}")
        self.win.statusBar().showMessage(f"Map of '{wm.text}' ({method}): peak at x {x:,.0f}, y {y:,.0f} px", 8000)
        x0, y0, x1, y1 = result.placement.rect
        self.panel.set_message(f"'{wm.text}' on the scene: {result.placement.rows} × {result.placement.cols} cells "
                               f"over x {x0:.0f}–{x1:.0f}, y {y0:.0f}–{y1:.0f} px")

    def _restyle(self) -> None:
        if self.heat is not None:
            rgba = heat_rgba(self.heat, **self.panel.map_style())
            for o in self.overlays:
                o.restyle(rgba)

    def clear_overlay(self) -> None:
        for o in self.overlays:
            o.clear()
        self.word = self.heat = None
        self.panel.set_map_shown(False)
        self.panel.set_legend("No map shown", "")
        self.panel.select_word(-1)
        self.chat.panel.mark_link("")
        if self.result is not None and self.key is not None:
            self.panel.set_answer(answer_html(self.conversation.exchanges[self.key[0]].answer, self.maps, None))

    # -- resets ---------------------------------------------------------------------------------
    def _drop(self, message: str) -> None:
        self._abandon()
        self.cache.clear()
        self.clear_overlay()
        self.result = self.key = None
        self.maps, self.records = {}, {}
        self.panel.clear(message)

    def reset(self) -> None:
        """A new chat or a new scene: no maps, no overlay, no computation."""
        self._drop(HINT)
        self.conversation = self.chat.conversation

    def model_changed(self) -> None:
        """Another model: the cached maps were another model's."""
        backend = self.chat.controller.backend
        self._drop(HINT)
        self.panel.set_adapter_available(getattr(backend, "adapter_path", None) is not None)
        reason = explanation_unavailable(backend)
        if reason:
            self.panel.set_message(SERVED_LINE + "." if reason == SERVED_NOTE else reason, warning=True)

    # -- export ---------------------------------------------------------------------------------
    def _shown_map(self):
        if self.result is None or self.word is None or self.win.session is None:
            self._tell("Show a word's map first.")
            return None
        return self.result, self.maps[self.word]

    def export_png(self, path: str) -> None:
        shown = self._shown_map()
        if shown is not None:
            result, wm = shown
            self._write(path, result.save_overlay_png, path, wm.word.index, **self.panel.map_style())

    def export_geotiff(self, path: str) -> None:
        shown = self._shown_map()
        if shown is not None:
            result, wm = shown
            self._write(path, result.save_geotiff, path, wm.word.index, self.win.session.scene)

    def _write(self, path: str, fn, *args, **kwargs) -> None:
        workers.submit("jobs", ("explain-export", path), fn, *args, **kwargs,
                       on_result=lambda _r, _p: (self.win.statusBar().showMessage(f"Saved {path}", 6000),
                                                 self.panel.set_message(f"Saved {path}"), self.exported.emit(path)),
                       on_error=lambda _r, exc: self._tell(f"Cannot write {path}: {exc}"))

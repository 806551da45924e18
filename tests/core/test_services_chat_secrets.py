"""A key in the endpoint URL never reaches a chat transcript (JSON or Markdown)."""

from __future__ import annotations

import base64

import pytest

from sarlang_core.errors import EndpointError
from sarlang_core.services import SceneSession
from sarlang_core.services.ask import AskRequest, Conversation, ask_scene
from sarlang_core.services.models import open_backend
from support.chat_server import serve

KEY = "sk-chatsecret-424242"


@pytest.fixture
def session(sar_scene):
    s = SceneSession.open(sar_scene[0])
    yield s
    s.close()


def test_transcripts_hold_no_url_credentials(session, monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with serve() as ep:
        url = ep.url.replace("http://", f"http://user:{KEY}@") + "?token=tk-chatsecret"
        ep.plan = [{"pieces": ["A ship."]}, {"status": 400, "echo_headers": True}]
        backend = open_backend("sar-vlm", endpoint=url)
        conv = Conversation(str(session.scene.path), AskRequest("q").pipeline)
        assert "".join(ask_scene(backend, session, conv, AskRequest("Describe the scene."))) == "A ship."
        with pytest.raises(EndpointError):
            "".join(ask_scene(backend, session, conv, AskRequest("And now?")))
        assert ep.posts()[0]["headers"]["authorization"] == f"Bearer {KEY}"
    conv.save(tmp_path / "t.json")
    text = (tmp_path / "t.json").read_text() + conv.to_markdown()
    assert ep.url in text and conv.exchanges[-1].error
    for secret in (KEY, "tk-chatsecret", base64.b64encode(f"user:{KEY}".encode()).decode()):
        assert secret not in text

"""URL redaction: the one function every written or shown URL goes through."""

import pytest

from sarlang_core.urls import redact_text, redact_url, split_credentials


@pytest.mark.parametrize("url,shown", [
    ("http://user:sk-1@host:8000/v1", "http://host:8000/v1"),
    ("http://sk-1@host/v1", "http://host/v1"),
    ("https://host/v1?key=abc", "https://host/v1"),
    ("https://host/v1?api-version=2024&api_key=abc&apikey=d&token=e&access_token=f&sig=g",
     "https://host/v1?api-version=2024"),
    ("https://host/v1?X-Amz-Signature=a&subscription-key=b&client_secret=c#frag", "https://host/v1"),
    ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("", ""),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_redact_text_finds_urls_and_echoed_credentials():
    text = ("cannot reach http://u:sk-1@h/v1?key=k2 (headers {'authorization': 'Bearer sk-1', "
            "'x': 'Basic dTpzay0x'})")
    out = redact_text(text)
    assert "sk-1" not in out and "k2" not in out and "dTpzay0x" not in out
    assert "http://h/v1" in out and "Bearer ***" in out


def test_split_credentials_keeps_what_the_connection_needs():
    assert split_credentials("http://user:sk%2F1@h:9/v1?key=k&v=2") == ("http://h:9/v1", "sk/1", {"key": "k", "v": "2"})
    assert split_credentials("http://sk-1@h/v1") == ("http://h/v1", "sk-1", {})
    assert split_credentials("http://h/v1") == ("http://h/v1", None, {})

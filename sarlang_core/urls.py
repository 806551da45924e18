"""Credentials in URLs: the one place that removes them from what is written or shown.

A server URL may carry a secret as ``user:key@`` or as a key-like query parameter (``?key=``,
``api_key``, ``token``, ``sig``...). ``redact_url`` drops both (other parameters stay, so two
endpoints can still be told apart); ``redact_text`` does it to every URL inside a message and
masks ``Bearer``/``Basic`` credentials a server may echo back; ``split_credentials`` gives the
connection what it needs: the URL without userinfo and query, the key from the userinfo, and the
query parameters to send with each request.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["redact_url", "redact_text", "split_credentials", "is_secret_param"]

HIDDEN = "***"
# parameter names that hold secrets (compared lower-case, "-" read as "_")
_SECRET_NAMES = frozenset({
    "key", "api_key", "apikey", "token", "access_token", "id_token", "refresh_token", "auth", "auth_token",
    "authorization", "sig", "signature", "secret", "client_secret", "password", "passwd", "pwd", "pass",
    "credential", "credentials", "code", "session", "sessionid", "jwt", "x_api_key", "subscription_key",
    "ocp_apim_subscription_key", "x_amz_signature", "x_amz_credential", "x_amz_security_token",
    "x_goog_signature", "x_goog_credential",
})
_SECRET_PARTS = ("key", "token", "secret", "password", "signature", "credential")
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`]+")
_AUTH_IN_TEXT = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{4,}", re.IGNORECASE)


def is_secret_param(name: str) -> bool:
    n = name.strip().lower().replace("-", "_")
    return n in _SECRET_NAMES or any(part in n for part in _SECRET_PARTS)


def _host(p) -> str:
    host = p.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        port = p.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def redact_url(url: Optional[str]) -> str:
    """``url`` without userinfo, key-like query parameters and fragment; "<endpoint>" when unreadable."""
    text = str(url or "").strip()
    if not text:
        return ""
    try:
        p = urlsplit(text)
        if not p.scheme or not p.netloc:
            return text if "@" not in text and not _has_secret_query(text) else "<endpoint>"
        query = [(k, v) for k, v in parse_qsl(p.query, keep_blank_values=True) if not is_secret_param(k)]
        return urlunsplit((p.scheme, _host(p), p.path, urlencode(query), ""))
    except ValueError:
        return "<endpoint>"


def _has_secret_query(text: str) -> bool:
    return any(is_secret_param(k) for k, _ in parse_qsl(text.partition("?")[2], keep_blank_values=True))


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted and Bearer/Basic credentials masked."""
    out = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(text))
    return _AUTH_IN_TEXT.sub(lambda m: f"{m.group(1)} {HIDDEN}", out)


def split_credentials(url: str) -> Tuple[str, Optional[str], Dict[str, str]]:
    """(URL for the connection without userinfo and query, the key held in the userinfo or None,
    the query parameters to send with every request). The key is the password, or the user name
    when there is no password (``http://KEY@host/v1``)."""
    p = urlsplit(str(url).strip())
    key = None
    if p.username is not None or p.password is not None:
        key = unquote(p.password) if p.password else unquote(p.username or "") or None
    query = dict(parse_qsl(p.query, keep_blank_values=True))
    return urlunsplit((p.scheme, _host(p), p.path, "", "")), key, query

"""Showing text that jwtmint does not control (a server's, a URL's) in messages and log lines.

Anything a server sends, and any URL, goes through :func:`shown` or :func:`shown_url`
before it is formatted into an exception message or a log line: the result is
printable ASCII (a CR or LF cannot forge a log line, an ANSI escape cannot reach a
terminal, a look-alike or bidi character cannot hide) and bounded in length (a
500 KB ``error_description`` does not become a 500 KB message); a URL's userinfo
(``user:password@``) is never shown. Exception attributes keep the values as
received; only their display is escaped.
"""

from __future__ import annotations

import re

__all__ = ["redact_userinfo", "shown", "shown_url"]

#: the default number of characters shown before the text is cut
LIMIT = 200

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_QUOTED = {**_NAMED, "'": "\\'"}
#: what may come before the "//" of an authority: a scheme (RFC 3986 §3.1), or nothing
_SCHEME = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9+.-]*:)?")


def _escape(char: str, named: dict[str, str]) -> str:
    escape = named.get(char)
    if escape is not None:
        return escape
    if " " <= char <= "~":
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def shown(value: object, limit: int = LIMIT, *, quote: bool = False) -> str:
    """``value`` (its ``repr`` unless a ``str``) as printable ASCII of at most about ``limit``
    characters: control and non-ASCII characters become Python-style escapes (``\\r``,
    ``\\n``, ``\\x1b``, ``\\u202e``; a backslash is doubled, so every escape is unambiguous),
    and longer text is cut, ending in ``...`` and the original length. ``quote`` wraps it in
    single quotes (a quote inside is escaped)."""
    text = value if isinstance(value, str) else repr(value)
    named = _QUOTED if quote else _NAMED
    # every character shows as one or more: the first ``limit`` are all that can fit
    head = text[:limit]
    if head.isascii() and head.isprintable() and not any(c in head for c in named):
        escaped, used = head, len(head)
    else:
        pieces: list[str] = []
        size = 0
        for char in head:
            piece = _escape(char, named)
            if size + len(piece) > limit:
                break
            pieces.append(piece)
            size += len(piece)
        escaped, used = "".join(pieces), len(pieces)
    if used < len(text):
        escaped += f"...({len(text)} chars)"
    return f"'{escaped}'" if quote else escaped


def redact_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, however malformed the URL.

    No parser is trusted here: the URLs shown are often the ones that failed to parse,
    and a password with an unescaped ``/``, ``?`` or ``#`` would end the authority of
    RFC 3986 §3.2 early and show its tail. So everything after the ``//`` that follows
    the scheme (or from the start when there is none, as in ``user:pw@host``) up to the last
    ``@`` is hidden: a path or query holding an ``@`` hides more than it needs to, which
    in a message is the safe side to err on.
    """
    first = url.find("@")
    if first < 0:
        return url
    # the "//" that opens the authority follows a scheme or nothing: one further on is in
    # the password ("user:a//b@host")
    marker = url.find("//", 0, first)
    start = marker + 2 if marker >= 0 and _SCHEME.fullmatch(url, 0, marker) else 0
    return f"{url[:start]}***{url[url.rfind('@') :]}"


def shown_url(url: object, limit: int = LIMIT) -> str:
    """A URL for a message or log line: userinfo redacted, then :func:`shown`, quoted (a
    value that is no ``str`` shows as its ``repr``, redacted too: ``b'https://u:pw@h'``)."""
    if not isinstance(url, str):
        return shown(redact_userinfo(repr(url)), limit)
    return shown(redact_userinfo(url), limit, quote=True)

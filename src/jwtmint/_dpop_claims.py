"""DPoP claim values (RFC 9449 §4.2): a request's method, URL, token and nonce, checked and cached.

Each function turns what a caller passes to ``DPoPSigner.proof`` into the
bytes the kernel splices into the claims: a JSON string for ``htm``, ``htu``
and ``nonce``, the SHA-256 digest for ``ath``. Values are refused, never
escaped: everything accepted here is printable ASCII without ``"`` or ``\\``,
so its JSON is the text in quotes. Errors never quote a URL, a nonce or a
token: a URL may carry credentials, a token is one.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from collections.abc import Callable

from .errors import InvalidClaimsError

__all__ = [
    "HTU_CACHE_SIZE",
    "ath_cache",
    "ath_digest",
    "htm_json",
    "htu_json",
    "nonce_json",
    "normalize_htu",
]

#: URL targets (without query and fragment) whose ``htu`` is remembered: a gateway calls the
#: same few hundred over and over.
HTU_CACHE_SIZE = 512

# RFC 9110 §5.6.2: token = 1*tchar
_TCHAR = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9449 §8.1: nonce = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E
_NQCHAR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# RFC 3986 §2: unreserved, reserved and "%"; anything else must be percent-encoded first
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# a URL cut at its first "?" or "#": the target (group 1), then only URI characters
_TARGET_AND_REST = re.compile(r"([^?#]*)[?#][A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_PERCENT_OR_TEXT = re.compile(r"%[0-9A-Fa-f]{2}|[^%]+")
# RFC 3986 §3.1
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _quoted(text: str) -> bytes:
    # callers pass only printable ASCII without '"' and '\': its JSON is itself in quotes
    return b'"' + text.encode("ascii") + b'"'


def htm_json(method: str) -> bytes:
    """``htm``: the request's method as given, an RFC 9110 §5.6.2 token (``GET``, ``POST``, ...),
    remembered for the last 64 methods."""
    if type(method) is str:  # checked first: the cache would hash (or choke on) anything
        return _htm_cached(method)
    return _htm(method)


def _htm(method: str) -> bytes:
    if not isinstance(method, str):
        raise InvalidClaimsError(f"method must be a str such as 'GET', got {type(method).__name__}")
    if not _TCHAR.fullmatch(method):
        shown = method if len(method) <= 40 else method[:40] + "..."
        raise InvalidClaimsError(
            f"method {shown!r} is not an HTTP method token (RFC 9110 §5.6.2): letters, digits "
            "and !#$%&'*+-.^_`|~ only, such as 'GET' or 'POST'"
        )
    return _quoted(method)


_htm_cached = functools.lru_cache(maxsize=64)(_htm)


def normalize_htu(url: str) -> str:
    """The ``htu`` of a request to ``url``: RFC 9449 §4.2 and §4.3.

    The target URI without query and fragment, with scheme and host in lower
    case, the default port dropped (443 for https, 80 for http; a port is
    written as its number), and an empty path written "/" (RFC 3986 §6.2.2,
    §6.2.3). Percent-encodings and the path are kept as given: dot segments
    are not removed nor the case of a percent-encoding changed, so the URL
    must be the one the HTTP client sends (the server compares). An absolute
    http(s) URL without userinfo is required; a URL with characters a URI
    cannot hold (spaces, quotes, non-ASCII) must be percent-encoded first.
    """
    if not isinstance(url, str):
        raise InvalidClaimsError(f"url must be a str, got {type(url).__name__}")
    _check_uri_chars(url)
    target = url.partition("#")[0].partition("?")[0]
    found = _SCHEME.match(target)
    if found is None:
        raise InvalidClaimsError(
            "a DPoP proof needs the request's absolute URL (https://host/path), not a relative "
            "reference (RFC 9449 §4.2)"
        )
    scheme = found.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidClaimsError(
            f"DPoP proofs are for http and https requests (RFC 9449 §4.2), not {scheme!r} URLs"
        )
    rest = target[found.end() :]
    if not rest.startswith("//"):
        raise InvalidClaimsError(
            f"the {scheme} URL has no authority: write it as {scheme}://host/path (RFC 3986 §3)"
        )
    authority, slash, path = rest[2:].partition("/")
    if "@" in authority:
        raise InvalidClaimsError(
            "the URL holds userinfo (user:password@host); remove it: credentials do not belong "
            "in a URL (RFC 9110 §4.2.4) nor in a proof's htu"
        )
    host, port = _host_port(authority, scheme)
    return f"{scheme}://{host}{port}{slash}{path}" if slash else f"{scheme}://{host}{port}/"


def _check_uri_chars(text: str) -> None:
    """Refuse what a URI cannot hold, in the whole URL or a part of it (RFC 3986 §2)."""
    if not _URI_CHARS.fullmatch(text):
        raise InvalidClaimsError(
            "the URL is empty or holds characters a URI cannot (RFC 3986 §2: spaces, quotes, "
            "backslashes, control or non-ASCII characters); percent-encode them, and give an "
            "internationalised host name as its IDNA A-label (xn--...)"
        )
    if _BAD_PERCENT.search(text):
        raise InvalidClaimsError(
            "the URL has a '%' that is not followed by two hex digits (RFC 3986 §2.1); "
            "write a literal '%' as %25"
        )


def _host_port(authority: str, scheme: str) -> tuple[str, str]:
    """(lower-case host, ":port" or "" for none or the default) of an authority sans userinfo."""
    if authority.startswith("["):
        host, bracket, after = authority[1:].partition("]")
        if not bracket:
            raise InvalidClaimsError("the URL's IPv6 host has no closing ']' (RFC 3986 §3.2.2)")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            host = ""  # refused below, outside the except: the message is ours alone
        if not host or "%" in host:
            raise InvalidClaimsError(
                "the URL's bracketed host is not an IPv6 address (RFC 3986 §3.2.2; zone "
                "identifiers and IPvFuture are not accepted)"
            )
        host = f"[{host.lower()}]"
        if after and not after.startswith(":"):
            raise InvalidClaimsError("the URL has text between its IPv6 host's ']' and the port")
        port = after[1:]
    else:
        host, _, port = authority.partition(":")
        if "[" in authority or "]" in authority or ":" in port:
            raise InvalidClaimsError(
                "the URL's host is malformed: '[', ']' or a second ':' outside an IPv6 literal "
                "(RFC 3986 §3.2.2)"
            )
        if not host:
            raise InvalidClaimsError("the URL has no host (RFC 3986 §3.2.2)")
        host = _lower_keeping_percent(host)
    if not port:  # none, or empty (RFC 3986 §6.2.3: "http://host:/" is "http://host/")
        return host, ""
    if not port.isdigit() or len(port) > 5 or int(port) > 65535:
        raise InvalidClaimsError("the URL's port is not a number from 0 to 65535")
    number = int(port)
    return host, "" if number == _DEFAULT_PORTS[scheme] else f":{number}"


def _lower_keeping_percent(host: str) -> str:
    if "%" not in host:
        return host.lower()
    return "".join(
        part if part.startswith("%") else part.lower() for part in _PERCENT_OR_TEXT.findall(host)
    )


@functools.lru_cache(maxsize=HTU_CACHE_SIZE)
def _htu_target_json(target: str) -> bytes:
    return _quoted(normalize_htu(target))


def htu_json(url: str) -> bytes:
    """``htu`` as a JSON string: :func:`normalize_htu`, remembered for recent targets.

    The cache (shared by every signer in the process) is keyed by the URL cut
    before ``#`` and then ``?``: scheme, authority and path. So URLs that
    differ in their query share one entry, and no query or fragment (which
    may carry credentials) is kept. The cut-off part is still checked, as
    :func:`normalize_htu` checks it, on every call.
    """
    if type(url) is not str:  # refused (or, for a str subclass, made) without the cache
        return _quoted(normalize_htu(url))
    if "?" not in url and "#" not in url:
        return _htu_target_json(url)
    # one scan cuts the target off and checks the rest; normalize_htu only to refuse
    # ("?x", bad characters or '%' after the cut), with its own message
    found = _TARGET_AND_REST.fullmatch(url)
    target = found.group(1) if found is not None else ""
    if not target or ("%" in url and _BAD_PERCENT.search(url, len(target))):
        return _quoted(normalize_htu(url))
    return _htu_target_json(target)


def nonce_json(nonce: str) -> bytes:
    """``nonce`` as a JSON string: a server's ``DPoP-Nonce``, 1*NQCHAR (RFC 9449 §8.1),
    remembered for the last 64 nonces."""
    if type(nonce) is str:
        return _nonce_cached(nonce)
    return _nonce(nonce)


def _nonce(nonce: str) -> bytes:
    if not isinstance(nonce, str):
        raise InvalidClaimsError(f"nonce must be a str, got {type(nonce).__name__}")
    if not _NQCHAR.fullmatch(nonce):
        raise InvalidClaimsError(
            "the nonce is empty or holds a character outside NQCHAR (RFC 9449 §8.1: printable "
            "ASCII except space, '\"' and '\\'); pass the server's DPoP-Nonce value as it came"
        )
    return _quoted(nonce)


_nonce_cached = functools.lru_cache(maxsize=64)(_nonce)


def ath_digest(access_token: str) -> bytes:
    """SHA-256 of the access token's ASCII bytes: ``ath`` before base64url (RFC 9449 §4.2)."""
    if not isinstance(access_token, str):
        raise InvalidClaimsError(f"access_token must be a str, got {type(access_token).__name__}")
    if not access_token or not access_token.isascii():
        raise InvalidClaimsError(
            "access_token must be a non-empty ASCII string (RFC 9449 §4.2 hashes its ASCII "
            "bytes; RFC 6750 §2.1 tokens are ASCII)"
        )
    return hashlib.sha256(access_token.encode("ascii")).digest()


def ath_cache(size: int = 8) -> Callable[[str], bytes]:
    """:func:`ath_digest` remembering the last ``size`` tokens (a gateway reuses one for many
    requests): each signer has its own, so tokens are held no longer than their signer."""
    cached = functools.lru_cache(maxsize=size)(ath_digest)

    def ath_of(access_token: str) -> bytes:
        if type(access_token) is str:
            return cached(access_token)
        return ath_digest(access_token)  # refused (or, for a str subclass, made) uncached

    return ath_of

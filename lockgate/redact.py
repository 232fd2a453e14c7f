"""Hide secrets in every text lockgate prints, logs, stores or renders.

One helper, :func:`redact`, applied at the boundaries where text leaves lockgate:

* the CLI consoles and ``--json`` output (:mod:`lockgate.cli.common`),
* files the CLI writes (HTML and JSON reports),
* log records (:class:`RedactingFilter`, installed on the CLI's log handler),
* the state store (every string bound into a statement: run arguments, errors, reasons),
* error messages (:class:`lockgate.errors.LockgateError` renders its message redacted).

What is hidden (replaced by ``***``):

* the password of a URL in any scheme: ``postgresql://me:pw@db/x`` → ``postgresql://me:***@db/x``
  (``mysql://``, ``redis://``, ``https://``, ``postgresql+psycopg://``, …);
* the value of a secret-looking query parameter or ``key=value`` setting:
  ``?password=pw``, ``&sslpassword=…``, ``token=…``, ``api_key=…``, libpq conninfo
  ``password='p w'``; and ``"password": "pw"`` in JSON/YAML-ish text;
* an HTTP ``Bearer`` token;
* every password seen before in a URL passed through :func:`redact` or :func:`remember`,
  wherever it shows up later, as typed or percent-decoded (a driver may echo the
  decoded password in an error message). Passwords shorter than 6 characters are only
  hidden where their position shows it is a password (masking every "ab" would wreck the
  text without protecting anything).

>>> redact("cannot read postgresql://me:s3cret@db:5432/shop?table=public.orders")
'cannot read postgresql://me:***@db:5432/shop?table=public.orders'
>>> redact("redis://:hunter22@cache/0 and mysql://root:pw@h/db")
'redis://:***@cache/0 and mysql://root:***@h/db'
>>> redact("postgresql://me@db/x?password=s3cret&table=t")
'postgresql://me@db/x?password=***&table=t'
>>> redact("host=db user=me password='a b' dbname=x")
'host=db user=me password=*** dbname=x'
>>> redact("auth failed for hunter22")
'auth failed for ***'
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from typing import Any, TypeVar
from urllib.parse import unquote

MASK = "***"
_MIN_REMEMBERED = 6

# names of settings whose value is a secret (query parameters, conninfo, JSON keys)
_SECRET_NAME = (
    r"[A-Za-z0-9_\-]*(?:password|passwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key"
    r"|private[_\-]?key|credentials?)[A-Za-z0-9_\-]*|pwd|pass|sslpassword"
)
# in a query string, short generic names are secrets too (?key=…&sig=…), and so is every
# name ending in "key" (app_key, subscription-key, hapikey, developerKey) and OpenWeather's appid
_QUERY_SECRET_NAME = _SECRET_NAME + r"|[A-Za-z0-9_\-]*key|sig|signature|auth|appid"
_QUERY_SECRET_FULL = re.compile(rf"(?i)(?:{_QUERY_SECRET_NAME})")

# scheme://netloc… up to whitespace, a quote or an angle bracket (how URLs end in prose,
# JSON, HTML and Rich markup)
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)([^\s'\"<>`]*)")
_QUERY_PARAM = re.compile(
    rf"(?i)([?&;](?:{_QUERY_SECRET_NAME})=)([^&;#\s'\"<>`]*)",
)
_KEYWORD = re.compile(
    rf"(?i)(?<![A-Za-z0-9_\-])((?:{_SECRET_NAME})\s*=\s*)('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\"<>`)]+)",
)
_MAPPING = re.compile(
    rf"(?i)([\"']?(?:{_SECRET_NAME})[\"']?\s*:\s*)(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')",
)
_PASSWORD_NAME = re.compile(r"(?i)pass|pwd")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]{8,}=*")

_known: set[str] = set()
_known_lock = threading.Lock()
_known_re: re.Pattern[str] | None = None


def remember(secret_or_url: str | None) -> None:
    """Hide this secret (or the password of this URL) wherever it appears from now on."""
    if not secret_or_url:
        return
    found = _url_passwords(secret_or_url) if "://" in secret_or_url else [secret_or_url]
    for s in found:
        _remember_one(s)


def is_secret_param(name: str) -> bool:
    """Whether a query parameter called ``name`` holds a secret (``api_key``, ``token``,
    ``sig``, ``app_key``…): its value is hidden in every URL shown."""
    return _QUERY_SECRET_FULL.fullmatch(name) is not None


def is_secret_header(name: str) -> bool:
    """Whether an HTTP header called ``name`` carries a credential (``Authorization``,
    ``Cookie``, ``X-API-Key``, ``X-Auth-Token``…)."""
    low = name.lower()
    return low in ("authorization", "proxy-authorization", "cookie") or any(
        is_secret_param(part) for part in (name, *re.split(r"[-_]", name)) if part
    )


def _remember_one(secret: str) -> None:
    global _known_re
    new = {s for s in (secret, unquote(secret)) if len(s) >= _MIN_REMEMBERED} - _known
    if not new:
        return
    with _known_lock:
        _known.update(new)
        alts = sorted(_known, key=len, reverse=True)
        _known_re = re.compile("|".join(re.escape(s) for s in alts))


def _url_passwords(text: str) -> list[str]:
    out = []
    for m in _URL.finditer(text):
        start, pw, _ = _split_userinfo(m.group(2))
        if pw and pw != m.group(2)[: start - 1]:
            out.append(pw)
    for m in _QUERY_PARAM.finditer(text):
        if m.group(2):
            out.append(m.group(2))
    return out


def _split_userinfo(rest: str) -> tuple[int, str | None, int]:
    """(start, password, end) of the password in ``rest`` (a URL after ``scheme://``);
    password None when there is none."""
    end = len(rest)
    for ch in "/?#":
        i = rest.find(ch)
        if i != -1:
            end = min(end, i)
    netloc = rest[:end]
    at = netloc.rfind("@")
    if at == -1:
        # a password holding a raw '/', '?' or '#' ends the netloc early: user:pa/ss@host
        colon = netloc.find(":")
        at2 = rest.find("@", end)
        if colon == -1 or at2 == -1 or any(c in rest[end:at2] for c in " \t"):
            return 0, None, 0
        return colon + 1, rest[colon + 1 : at2], at2
    colon = netloc.find(":", 0, at)
    if colon == -1:
        return 0, None, 0
    # a password holding both a raw '@' and a raw '/': user:p@ss/w0rd@host — the userinfo
    # ends at the last '@' before the query (hiding too much beats showing part of it)
    query = len(rest)
    for ch in "?#":
        i = rest.find(ch, end)
        if i != -1:
            query = min(query, i)
    last = rest.rfind("@", end, query)
    if last != -1:
        at = last
    return colon + 1, rest[colon + 1 : at], at


def _mask_url(m: re.Match[str]) -> str:
    scheme, rest = m.group(1), m.group(2)
    start, pw, end = _split_userinfo(rest)
    if pw:
        if pw != rest[: start - 1]:  # postgres:postgres must not hide every "postgres"
            _remember_one(pw)
        rest = rest[:start] + MASK + rest[end:]
    return scheme + rest


def _mask_value(m: re.Match[str]) -> str:
    value = m.group(2)
    inner = value[1:-1] if value[:1] in "'\"" and len(value) >= 2 else value
    if inner and inner != MASK and _PASSWORD_NAME.search(m.group(1)):
        # only passwords are remembered: a generic ``key=name`` must not mask every "name"
        _remember_one(inner)
    quote = value[:1] if value[:1] in "'\"" and m.re is _MAPPING else ""
    return m.group(1) + quote + MASK + quote


def redact(text: str, *, known: bool = True) -> str:
    """``text`` with every secret replaced by ``***`` (see the module docstring).

    ``known=False`` hides only what its position shows is a secret, not the passwords
    remembered from earlier URLs: for data that must stay exact (the state store's names and
    keys), where a weak password such as ``test`` must not turn ``test_orders`` into
    ``***_orders``."""
    if not text:
        return text
    if "://" in text:
        text = _URL.sub(_mask_url, text)
    if "=" in text:
        text = _QUERY_PARAM.sub(_mask_value, text)
        text = _KEYWORD.sub(_mask_value, text)
    if ":" in text:
        text = _MAPPING.sub(_mask_value, text)
    text = _BEARER.sub(r"\1" + MASK, text)
    remembered = _known_re if known else None
    if remembered is not None:
        text = remembered.sub(MASK, text)
    return text


@functools.lru_cache(maxsize=16384)
def _memo(text: str, known_re: re.Pattern[str] | None) -> str:
    return redact(text)


def redact_memo(text: str) -> str:
    """:func:`redact` with short answers remembered, for renderers that print the same names
    and timestamps thousands of times; remembering a new secret starts a fresh memo."""
    return _memo(text, _known_re) if len(text) <= 256 else redact(text)


T = TypeVar("T")


def redact_obj(obj: T) -> T:
    """A copy of a JSON-like value (dicts, lists, tuples, strings) with every string redacted."""
    if isinstance(obj, str):
        return redact(obj)  # type: ignore[return-value]
    if isinstance(obj, dict):
        return {redact_obj(k): redact_obj(v) for k, v in obj.items()}  # type: ignore[return-value]
    if isinstance(obj, list):
        return [redact_obj(v) for v in obj]  # type: ignore[return-value]
    if isinstance(obj, tuple):
        return tuple(redact_obj(v) for v in obj)  # type: ignore[return-value]
    return obj


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message, the traceback and the stack.

    Attach it to a *handler* (a filter on a logger does not see its children's records):
    :func:`install_log_redaction` does that for the root logger's handlers.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the handler report it as usual
            return True
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Add a :class:`RedactingFilter` to every handler of ``logger`` (default: root)."""
    for h in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())


def redact_any(value: Any) -> Any:
    """``redact(value, known=False)`` for strings, identity for everything else (values
    bound into state-store statements)."""
    return redact(value, known=False) if isinstance(value, str) else value


__all__ = [
    "MASK",
    "RedactingFilter",
    "install_log_redaction",
    "is_secret_header",
    "is_secret_param",
    "redact",
    "redact_any",
    "redact_obj",
    "remember",
]

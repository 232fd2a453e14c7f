"""The HTTP side of ``type: rest``: requests with auth, retries, a rate limit, pagination
with a page cap and loop detection, and page URLs fit to show.

:class:`PageReader` yields :class:`Page` values (the records of one response, its URL with
every secret hidden); it never writes anything. Time is injected (``sleep``, ``clock``) so
tests can check the waits without waiting; the transport too (``httpx.MockTransport``).

Retries: 429 and 500/502/503/504, timeouts and lost connections are retried up to
``retry.attempts`` times. A ``Retry-After`` (seconds or an HTTP date) is honoured; one beyond
``retry.max_wait`` fails the step as transient rather than hammering the server. Without it
the wait is ``backoff * 2**n`` capped at ``max_wait``, with jitter (half fixed, half random)
so many clients do not retry in lockstep.

Hosts: every request (next links and redirects included) goes to base_url's host (or the
OAuth2 token URL's), never from https down to http — the credentials go with each one.
A query in base_url (``?api-version=2``, ``?key=${KEY}``) stays the query of every request.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from lockgate.connections import Connection, references
from lockgate.errors import InputError, TerminalError, TransientError
from lockgate.redact import (
    MASK,
    RedactingFilter,
    is_secret_header,
    is_secret_param,
    redact,
    remember,
)
from lockgate.sources._rest_config import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    CursorPaginator,
    HeaderLinkPaginator,
    JsonLinkPaginator,
    OAuth2ClientCredentials,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
    RestSourceSpec,
    SinglePage,
)

if TYPE_CHECKING:
    import ssl

    import httpx

try:  # optional (lockgate[rest]): a faster parser and encoder of pages
    import orjson as _orjson
except ImportError:  # pragma: no cover - the stdlib json is the fallback
    _orjson = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class AuthError(TerminalError):
    """The API refused the credentials (401/403)."""


class NotFound(InputError):
    """The endpoint answered 404 (a child endpoint may skip its parent on it)."""


@dataclass(frozen=True)
class Endpoint:
    """What one paginated read requests: the URL (secrets resolved), the query parameters,
    the paginator, where the records are, and whether ``since_param`` applies."""

    url: str
    params: dict[str, str]
    paginator: Paginator
    record_path: str | None
    since: bool = True


@dataclass(frozen=True)
class Page:
    """One response: its number (1-based), its URL as shown (secrets hidden) and records.

    ``exact``: the records came from the strict parser (no NaN/Infinity, every integer
    within 64 bits), so the fast encoder writes them back unchanged."""

    number: int
    url: str
    records: list[Any]
    exact: bool = False


# ---- JSON paths ---------------------------------------------------------------------------

_STEP = re.compile(r"\.?([A-Za-z_][\w\-]*)|\[(\d+)\]|\[\*\]|\[['\"]([^'\"]+)['\"]\]")
_MISSING = object()


def parse_path(path: str) -> list[str | int | None]:
    """A JSONPath subset: ``$``, ``.key``, ``['key']``, ``[n]``, ``[*]`` (None = every item).

    >>> parse_path("$.data.items[*]"), parse_path("result['x-y'][0]")
    (['data', 'items', None], ['result', 'x-y', 0])
    """
    text = path.strip()
    text = text[1:] if text.startswith("$") else text
    steps: list[str | int | None] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"unsupported JSON path {path!r} at {text[pos:]!r}")
        if m.group(1) is not None:
            steps.append(m.group(1))
        elif m.group(2) is not None:
            steps.append(int(m.group(2)))
        elif m.group(3) is not None:
            steps.append(m.group(3))
        else:
            steps.append(None)
        pos = m.end()
    return steps


def find(data: Any, path: list[str | int | None]) -> Any:
    """The value at ``path`` (``[*]`` flattens lists), or ``_MISSING``."""
    cur = data
    for i, step in enumerate(path):
        if step is None:
            if not isinstance(cur, list):
                return _MISSING
            rest = path[i + 1 :]
            out = [find(x, rest) for x in cur]
            return [x for x in out if x is not _MISSING]
        if isinstance(step, int):
            if not isinstance(cur, list) or step >= len(cur):
                return _MISSING
            cur = cur[step]
        else:
            if not isinstance(cur, dict) or step not in cur:
                return _MISSING
            cur = cur[step]
    return cur


def value_at(data: Any, path: str | None) -> Any:
    """The value at JSON path ``path`` of ``data`` (None when missing or no path)."""
    if path is None:
        return None
    v = find(data, parse_path(path))
    return None if v is _MISSING else v


# ---- secrets --------------------------------------------------------------------------------


def resolve_secrets(config: RestSourceSpec, dataset: str, root: Any) -> dict[str, str]:
    """Every value of the config that may hold a reference, resolved (``${VAR}``, ``file:``).

    Keys: ``base_url``, ``param:<name>``, ``header:<name>``, ``auth:<field>``. Every value that
    came from a reference is remembered for redaction, whatever its name."""
    fields: dict[str, str] = {"base_url": config.base_url}
    fields.update({f"param:{k}": str(v) for k, v in config.params.items()})
    if config.parent is not None:
        fields.update({f"parent_param:{k}": str(v) for k, v in config.parent.params.items()})
    fields.update({f"header:{k}": v for k, v in config.headers.items()})
    if config.auth is not None:
        for k, v in config.auth.model_dump().items():
            if k != "type" and isinstance(v, str):
                fields[f"auth:{k}"] = v
    conn = Connection(f"source of dataset '{dataset}'", "rest", dict(fields), root)
    resolved = {k: str(v) for k, v in conn.resolve().items()}
    for k, v in fields.items():
        if references(v):
            _remember_secret(resolved[k], v)
        elif k.startswith(("param:", "parent_param:")) and is_secret_param(k.partition(":")[2]):
            remember(resolved[k])  # a literal key in params: hidden wherever it shows up
        elif k.startswith("header:") and is_secret_header(k.partition(":")[2]):
            remember(resolved[k].split(" ", 1)[-1])  # "Token abc…": the credential part
    remember(resolved["base_url"])  # a literal ?api_key= in base_url, likewise
    return resolved


def _remember_secret(resolved: str, template: str) -> None:
    """Remember the parts of ``resolved`` that came from references (a whole URL with one
    ``${KEY}`` inside must not mask the host name)."""
    if template.startswith("file:"):
        remember(resolved)
        return
    pattern = re.escape(template)
    pattern = re.sub(r"\\\$\\\{[A-Za-z_][A-Za-z0-9_]*\\\}", "(.*?)", pattern)
    m = re.fullmatch(pattern, resolved, flags=re.S)
    for part in m.groups() if m else (resolved,):
        remember(part)


def _redact_http_logs() -> None:
    """httpx logs every request URL at INFO — with an API key in the query string. A filter
    on its loggers (not a handler: any application's handlers) hides secrets at the source."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


# ---- the reader -----------------------------------------------------------------------------


class PageReader:
    """Fetches every page of one endpoint (see the module docstring)."""

    def __init__(
        self,
        config: RestSourceSpec,
        secrets: Mapping[str, str],
        *,
        dataset: str = "?",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        try:
            import httpx
        except ImportError:  # pragma: no cover - an optional dependency
            raise InputError(
                f"dataset '{dataset}': the REST source needs httpx",
                hint="pip install 'lockgate[rest]'",
            ) from None

        _redact_http_logs()
        self.config = config
        self.secrets = secrets
        self.dataset = dataset
        self.sleep, self.clock, self.rand = sleep, clock, rand
        self._next_slot = 0.0
        self._token: str | None = None
        self._token_expires = 0.0
        headers = {k[len("header:") :]: v for k, v in secrets.items() if k.startswith("header:")}
        auth = config.auth
        self._query_key: tuple[str, str] | None = None
        if isinstance(auth, BearerAuth):
            headers["Authorization"] = "Bearer " + secrets["auth:token"]
        elif isinstance(auth, ApiKeyAuth):
            if auth.location == "header":
                headers[auth.name] = secrets["auth:key"]
            else:
                self._query_key = (auth.name, secrets["auth:key"])
        basic = None
        if isinstance(auth, BasicAuth):
            basic = httpx.BasicAuth(secrets["auth:username"], secrets["auth:password"])
        self.client = httpx.Client(
            headers=headers,
            auth=basic,
            timeout=config.timeout,
            transport=transport,
            verify=_tls_context() if transport is None else True,
            follow_redirects=True,
            event_hooks={"request": [self._guard_host]},
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> PageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- URLs ----

    def start_url(self) -> str:
        return _join(self.secrets["base_url"], self.config.path)

    def show(self, url: str, params: Mapping[str, str] | None = None) -> str:
        """``url`` with ``params``, fit for messages, logs and the quarantine: the API key
        parameter and every secret hidden."""
        full = _with_params(url, params or {})
        if self._query_key is not None:
            name = self._query_key[0]
            parts = urlsplit(full)
            q = [(k, MASK if k == name else v) for k, v in parse_qsl(parts.query, True)]
            full = urlunsplit(parts._replace(query=urlencode(q, safe="*")))
        return redact(full)

    def _guard_host(self, request: httpx.Request) -> None:
        """Every request, redirects included, goes to base_url's host or the OAuth2 token
        URL's: httpx keeps custom headers (an API key header) on a redirect to another host."""
        url = request.url
        hosts = [urlsplit(self.secrets["base_url"])]
        if "auth:token_url" in self.secrets:
            hosts.append(urlsplit(self.secrets["auth:token_url"]))
        for h in hosts:
            if url.host == (h.hostname or "") and (url.scheme == h.scheme or url.scheme == "https"):
                return
        raise InputError(
            f"dataset '{self.dataset}': refusing a request to {self.show(str(url))}: not the "
            "host of base_url (a redirect or next link to another host); the credentials are "
            "never sent there, nothing was published",
            hint="point base_url at the host the API's pages come from",
        )

    def _same_origin(self, url: str, start: str, number: int) -> None:
        """A next link must stay on the endpoint's host (and not go from https to http):
        the credentials (API key in the query, auth headers) go with every request."""
        a, b = urlsplit(url), urlsplit(start)
        if a.hostname != b.hostname or (a.scheme != b.scheme and a.scheme != "https"):
            raise InputError(
                f"dataset '{self.dataset}': page {number}'s next link points to another "
                f"host: {self.show(url)}; the credentials are never sent there, nothing "
                "was published",
                hint="a paginator reading the wrong field (next_url_path), or an API that "
                "moved: point base_url at the host its pages come from",
            )

    # ---- requests ----

    def _throttle(self) -> None:
        if self.config.rate_limit is None:
            return
        now = self.clock()
        wait = self._next_slot - now
        if wait > 0:
            self.sleep(wait)
            now += wait
        self._next_slot = max(now, self._next_slot) + 1.0 / self.config.rate_limit

    def _backoff(self, attempt: int) -> float:
        r = self.config.retry
        cap = min(r.max_wait, r.backoff * float(2**attempt))
        return cap / 2 + self.rand() * cap / 2

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    def _oauth_token(self, force: bool = False) -> str:
        auth = self.config.auth
        assert isinstance(auth, OAuth2ClientCredentials)
        if self._token is not None and not force and self.clock() < self._token_expires:
            return self._token
        data = {"grant_type": "client_credentials"}
        if auth.scope:
            data["scope"] = auth.scope
        import httpx

        try:
            r = self.client.post(
                self.secrets["auth:token_url"],
                data=data,
                auth=httpx.BasicAuth(
                    self.secrets["auth:client_id"], self.secrets["auth:client_secret"]
                ),
            )
        except httpx.TransportError as e:
            raise TransientError(f"OAuth2 token request failed: {type(e).__name__}") from None
        if r.status_code != 200:
            raise AuthError(
                f"dataset '{self.dataset}': OAuth2 token request to "
                f"{self.show(str(r.request.url))} answered {r.status_code}",
                hint="check auth.client_id and the client_secret reference",
            )
        try:
            body = r.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise AuthError("OAuth2 token response has no access_token") from None
        remember(token)
        self._token = token
        expires = body.get("expires_in")
        ttl = float(expires) if isinstance(expires, int | float) else 3600.0
        self._token_expires = self.clock() + max(0.0, ttl - 30)  # renew a little early
        return token

    def fetch(
        self, url: str, params: Mapping[str, str], number: int
    ) -> tuple[tuple[Any, bool], httpx.Response]:
        """One page: ((parsed JSON body, exact), response), with retries (see the module
        docstring); ``exact`` as :attr:`Page.exact`."""
        import httpx

        cfg = self.config
        # httpx replaces a URL's query by ``params=``: a query in base_url/path is kept here
        url, query = _split(url)
        query.update(params)
        shown = self.show(url, query)
        if self._query_key is not None:
            query.setdefault(*self._query_key)
        where = f"dataset '{self.dataset}', page {number} <{shown}>"
        refreshed = False
        last = ""
        attempt = 0
        while True:
            self._throttle()
            headers = {}
            if isinstance(cfg.auth, OAuth2ClientCredentials):
                headers["Authorization"] = "Bearer " + self._oauth_token()
            wait: float | None
            try:
                request = self.client.build_request(cfg.method, url, params=query, headers=headers)
                response = self.client.send(request, stream=True)
                try:
                    body = self._read_body(response, where)
                finally:
                    response.close()
            except httpx.TransportError as e:
                last = f"{type(e).__name__}"
                wait = self._backoff(attempt)
            else:
                status = response.status_code
                if (
                    status == 401
                    and isinstance(cfg.auth, OAuth2ClientCredentials)
                    and not refreshed
                ):
                    refreshed = True  # an expired token: fetch a new one, once
                    self._oauth_token(force=True)
                    continue
                if status in (401, 403):
                    raise AuthError(
                        f"{where}: the API refused the credentials ({status})",
                        hint="check the auth: settings and that the referenced secret is current",
                    )
                if status not in RETRY_STATUS:
                    if status == 404:
                        raise NotFound(
                            f"{where}: HTTP 404: {_excerpt(body)}",
                            hint="check base_url, path and params",
                        )
                    if status >= 400:
                        raise InputError(
                            f"{where}: HTTP {status}: {_excerpt(body)}",
                            hint="check base_url, path and params",
                        )
                    return _parse(body, status, where), response
                last = f"HTTP {status}"
                after = self._retry_after(response)
                if after is not None and after > cfg.retry.max_wait:
                    raise TransientError(
                        f"{where}: the server asked to wait {after:.0f}s (Retry-After), more "
                        f"than retry.max_wait {cfg.retry.max_wait:.0f}s; nothing was published",
                        hint="run again later, or raise retry.max_wait",
                    )
                wait = after if after is not None else self._backoff(attempt)
            if attempt >= cfg.retry.attempts:
                raise TransientError(
                    f"{where}: gave up after {attempt + 1} attempts (last: {last}); nothing "
                    "was published",
                    hint="the step is retried by the run's retry policy; or raise retry.attempts",
                )
            attempt += 1
            log.info("%s: %s, retry %d in %.2fs", where, last, attempt, wait)
            self.sleep(wait)

    def _read_body(self, response: httpx.Response, where: str) -> bytes:
        limit = self.config.max_page_bytes
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise InputError(
                f"{where}: response of {int(declared):,} bytes exceeds max_page_bytes {limit:,}",
                hint="ask for smaller pages (the paginator's page size) or raise max_page_bytes",
            )
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise InputError(
                    f"{where}: response exceeds max_page_bytes {limit:,}",
                    hint="ask for smaller pages (the paginator's page size) or raise "
                    "max_page_bytes",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    # ---- pagination ----

    def endpoint(self) -> Endpoint:
        """The configured endpoint (for a child endpoint: its path still has placeholders)."""
        params = {k[len("param:") :]: v for k, v in self.secrets.items() if k.startswith("param:")}
        return Endpoint(self.start_url(), params, self.config.paginator, self.config.record_path)

    def parent_endpoint(self) -> Endpoint:
        """The parent endpoint of a child endpoint (``parent:``); ``since_param`` is not sent."""
        parent = self.config.parent
        assert parent is not None
        url = _join(self.secrets["base_url"], parent.path)
        prefix = "parent_param:"
        params = {k[len(prefix) :]: v for k, v in self.secrets.items() if k.startswith(prefix)}
        return Endpoint(url, params, parent.paginator, parent.record_path, since=False)

    def pages(self, since: str | None, endpoint: Endpoint | None = None) -> Iterator[Page]:
        """Every page of the endpoint (default: the configured one), in order; ``since``
        goes in ``since_param``."""
        cfg = self.config
        ep = endpoint if endpoint is not None else self.endpoint()
        pag = ep.paginator
        url = ep.url
        params = dict(ep.params)
        if cfg.since_param and since is not None and ep.since:
            params[cfg.since_param] = since
        if isinstance(pag, PageNumberPaginator):
            params[pag.page_param] = str(pag.base_page)
            if pag.page_size is not None:
                params[pag.page_size_param] = str(pag.page_size)
        elif isinstance(pag, OffsetPaginator):
            params[pag.offset_param] = "0"
            params[pag.limit_param] = str(pag.limit)
        record_path = None if ep.record_path is None else parse_path(ep.record_path)
        seen: dict[str, int] = {}
        number = 0
        offset = 0
        while True:
            number += 1
            key = _with_params(url, params)
            if key in seen:
                raise InputError(
                    f"dataset '{self.dataset}': pagination loop: page {number} would request "
                    f"{self.show(url, params)} again (already page {seen[key]}); nothing was "
                    "published",
                    hint="the API returned the same next cursor/URL twice: check the "
                    "paginator settings (cursor_path, next_url_path)",
                )
            if number > cfg.max_pages:
                raise InputError(
                    f"dataset '{self.dataset}': more than max_pages {cfg.max_pages} pages; "
                    "nothing was published",
                    hint="raise max_pages if the endpoint really has that many pages",
                )
            seen[key] = number
            (data, exact), response = self.fetch(url, params, number)
            shown = self.show(url, params)
            records = _records(data, record_path, ep.record_path, number, shown, self.dataset)
            yield Page(number, shown, records, exact)
            if isinstance(pag, SinglePage):
                return
            if isinstance(pag, PageNumberPaginator):
                total = value_at(data, pag.total_path)
                current = int(params[pag.page_param])
                if not records or (
                    isinstance(total, int | float) and current - pag.base_page + 1 >= total
                ):
                    return
                params = {**params, pag.page_param: str(current + 1)}
            elif isinstance(pag, OffsetPaginator):
                offset += len(records)
                total = value_at(data, pag.total_path)
                more = value_at(data, pag.has_more_path)
                if (
                    not records
                    or (isinstance(total, int | float) and offset >= total)
                    or (pag.has_more_path is not None and not more)
                ):
                    return
                params = {**params, pag.offset_param: str(offset)}
            elif isinstance(pag, CursorPaginator):
                cursor = value_at(data, pag.cursor_path)
                more = value_at(data, pag.has_more_path)
                if cursor in (None, "") or (pag.has_more_path is not None and not more):
                    return
                params = {**params, pag.cursor_param: str(cursor)}
            else:
                if isinstance(pag, JsonLinkPaginator):
                    nxt = value_at(data, pag.next_url_path)
                else:
                    assert isinstance(pag, HeaderLinkPaginator)
                    nxt = link(response.headers.get_list("link"), pag.rel)
                if not nxt:
                    return
                url, params = _split(urljoin(str(response.url), str(nxt)))
                self._same_origin(url, ep.url, number)


_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL = re.compile(r';\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))', re.I)


def link(headers: list[str], rel: str) -> str | None:
    """The URL of the first ``Link`` (RFC 8288) whose relations include ``rel``: a link
    may list several (``rel="next last"``), relations are case-insensitive, and there may
    be several Link headers. (httpx's ``Response.links`` keys by the whole rel text, so
    ``rel="next last"`` was no "next" link and the read stopped early, silently.)

    >>> link(['<?p=2>; rel="next last", <?p=1>; rel=prev'], "next")
    '?p=2'
    """
    want = rel.lower()
    for m in _LINK.finditer(", ".join(headers)):
        r = _REL.search(m.group(2))
        if r is not None and want in (r.group(1) or r.group(2) or "").lower().split():
            return m.group(1).strip()
    return None


def _join(base: str, path: str) -> str:
    """``path`` after ``base_url``'s path; a query in either stays the query (a key or an
    ``api-version=`` in base_url must not end up inside the path)."""
    if not path:
        return base
    b = urlsplit(base)
    p_path, _, p_query = path.partition("?")
    joined = b.path.rstrip("/") + "/" + p_path.lstrip("/")
    query = "&".join(q for q in (b.query, p_query) if q)
    return urlunsplit(b._replace(path=joined, query=query))


def _with_params(url: str, params: Mapping[str, str]) -> str:
    if not params:
        return url
    parts = urlsplit(url)
    q = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(q)))


def _split(url: str) -> tuple[str, dict[str, str]]:
    """A next-page URL as (URL without query, its query parameters)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="")), dict(parse_qsl(parts.query, True))


def _excerpt(body: bytes, n: int = 200) -> str:
    text = body[:n].decode("utf-8", "replace").replace("\n", " ")
    return repr(text + ("…" if len(body) > n else ""))


#: every digit → "0": a run of 19 zeros then marks a number orjson may not read exactly (an
#: integer beyond 64 bits becomes a float); bytes.translate + ``in`` beat a regex 30 times
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def loads(body: bytes) -> tuple[Any, bool]:
    """``body`` parsed: (value, exact). orjson (3 to 10 times faster to write back) when it reads
    the body exactly; else the stdlib parser (NaN, Infinity, huge integers, a BOM, UTF-16),
    and ``exact`` is False."""
    if _orjson is not None and _LONG_RUN not in body.translate(_DIGITS):
        try:
            return _orjson.loads(body), True
        except _orjson.JSONDecodeError:
            pass
    return json.loads(body), False


def _parse(body: bytes, status: int, where: str) -> tuple[Any, bool]:
    if not body.strip() and status == 204:
        return [], True
    try:
        return loads(body)
    except RecursionError:  # the stdlib parser past ~1000 levels (orjson stops at 1024)
        raise InputError(
            f"{where}: the response is nested too deeply to parse (more than ~1000 levels); "
            "nothing was published",
            hint="check the endpoint: no API's records nest that deep",
        ) from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(
            f"{where}: the response is not JSON ({e}); it starts with {_excerpt(body)}; "
            "nothing was published",
            hint="check base_url/path (an HTML error page?) or the API's status",
        ) from None


def _records(
    data: Any,
    path: list[str | int | None] | None,
    path_text: str | None,
    number: int,
    shown: str,
    dataset: str,
) -> list[Any]:
    """The records of a page: at ``record_path``, else the page if it is a list, else its
    only list value (a single object is one record)."""
    where = f"dataset '{dataset}', page {number} <{shown}>"
    if path is None:
        if isinstance(data, list):
            return data
        if isinstance(data, dict):
            lists = [k for k, v in data.items() if isinstance(v, list)]
            if len(lists) == 1:
                return list(data[lists[0]])
            raise InputError(
                f"{where}: cannot tell where the records are (keys: {', '.join(list(data)[:10])})",
                hint="set record_path, e.g. record_path: data",
            )
        raise InputError(f"{where}: the page is a JSON {type(data).__name__}, not records")
    found = find(data, path)
    if found is _MISSING:
        keys = ", ".join(list(data)[:10]) if isinstance(data, dict) else type(data).__name__
        raise InputError(
            f"{where}: record_path '{path_text}' not found (page keys: {keys})",
            hint="an error body with status 200? otherwise fix record_path",
        )
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


@cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CAs, ``SSL_CERT_FILE``/``SSL_CERT_DIR``
    honoured), made once per process: httpx builds one per client otherwise, ~20 ms of CPU
    per REST step under ``lockgate serve``. An ``SSLContext`` is safe to share between
    clients and threads."""
    import httpx

    return httpx.create_ssl_context()

"""The ``source: {type: rest, …}`` config: endpoint, auth, paginator, retries, rate limit.

Modelled on dlt's ``rest_api`` (client ``base_url``/``headers``/``auth``/``paginator``,
endpoint ``path``/``params``/``data_selector``, incremental ``start_param`` + ``lag``), for
one endpoint per dataset. Secrets (``token``, ``key``, ``password``, ``client_secret``) must
be references — ``${ENV_VAR}`` or ``file:/path`` — never literals in the project files.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)

from lockgate.connections import references
from lockgate.redact import MASK, is_secret_header, is_secret_param, redact
from lockgate.sources.base import SourceConfig


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Params = dict[str, str | int | float | bool]


def _hidden_params(params: Params) -> Params:
    """``params`` as stored and shown (the state store's definitions, ``show``, the UI): a
    literal value of a secret-named parameter (``api_key: abc123``) hidden; references
    (``${API_KEY}``) are kept, they hold no secret."""
    return {
        k: MASK if isinstance(v, str) and is_secret_param(k) and not references(v) else v
        for k, v in params.items()
    }


def _secret_ref(value: str) -> str:
    if not references(value):
        raise ValueError(
            "a secret must be a reference, not a literal: write '${API_TOKEN}' (environment "
            "variable) or 'file:/run/secrets/token' — literals end up in project files and logs"
        )
    return value


class BearerAuth(_Frozen):
    """``Authorization: Bearer <token>``."""

    type: Literal["bearer"] = "bearer"
    token: str = Field(description="a reference: '${API_TOKEN}' or 'file:/path'")

    _ref = field_validator("token")(_secret_ref)


class ApiKeyAuth(_Frozen):
    """An API key in a header or in the query string (hidden in every message either way)."""

    type: Literal["api_key"] = "api_key"
    name: str = Field(default="X-API-Key", description="header or query parameter name")
    key: str = Field(description="a reference: '${API_KEY}' or 'file:/path'")
    location: Literal["header", "query"] = "header"

    _ref = field_validator("key")(_secret_ref)


class BasicAuth(_Frozen):
    """HTTP basic authentication."""

    type: Literal["basic"] = "basic"
    username: str
    password: str = Field(description="a reference: '${API_PASSWORD}' or 'file:/path'")

    _ref = field_validator("password")(_secret_ref)


class OAuth2ClientCredentials(_Frozen):
    """OAuth2 client-credentials grant: a token fetched from ``token_url``, renewed when it
    expires or the API answers 401."""

    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str
    client_id: str
    client_secret: str = Field(description="a reference: '${CLIENT_SECRET}' or 'file:/path'")
    scope: str | None = None

    _ref = field_validator("client_secret")(_secret_ref)


Auth = Annotated[
    BearerAuth | ApiKeyAuth | BasicAuth | OAuth2ClientCredentials, Field(discriminator="type")
]


class SinglePage(_Frozen):
    """One request, no pagination."""

    type: Literal["single_page"] = "single_page"


class PageNumberPaginator(_Frozen):
    """``?page=1``, ``?page=2``… until an empty page or ``total_path`` pages."""

    type: Literal["page_number"] = "page_number"
    page_param: str = "page"
    base_page: int = 1
    page_size: int | None = Field(default=None, ge=1, description="sent as page_size_param")
    page_size_param: str = "per_page"
    total_path: str | None = Field(default=None, description="JSON path of the page count")


class OffsetPaginator(_Frozen):
    """``?offset=0&limit=100``… until an empty page, ``offset >= total`` or ``has_more`` false."""

    type: Literal["offset"] = "offset"
    limit: int = Field(default=100, ge=1)
    offset_param: str = "offset"
    limit_param: str = "limit"
    total_path: str | None = Field(default=None, description="JSON path of the record count")
    has_more_path: str | None = Field(default=None, description="JSON path of a boolean")


class CursorPaginator(_Frozen):
    """The next page's cursor (next-token) is in the body; sent back as ``cursor_param``;
    the last page has none (null, empty, missing) or ``has_more`` false."""

    type: Literal["cursor"] = "cursor"
    cursor_path: str = "next_cursor"
    cursor_param: str = "cursor"
    has_more_path: str | None = None


class JsonLinkPaginator(_Frozen):
    """The next page's URL is in the body (absolute or relative to the page)."""

    type: Literal["json_link"] = "json_link"
    next_url_path: str = "next"


class HeaderLinkPaginator(_Frozen):
    """The next page's URL is in the ``Link`` header (RFC 8288), relation ``rel``."""

    type: Literal["header_link"] = "header_link"
    rel: str = "next"


Paginator = Annotated[
    SinglePage
    | PageNumberPaginator
    | OffsetPaginator
    | CursorPaginator
    | JsonLinkPaginator
    | HeaderLinkPaginator,
    Field(discriminator="type"),
]


class RetryPolicy(_Frozen):
    """Retries of one request on 429, 5xx (500/502/503/504), timeouts and lost connections."""

    attempts: int = Field(default=6, ge=0, description="retries after the first try")
    backoff: float = Field(
        default=0.5, ge=0, description="seconds; doubled per retry, jittered (no Retry-After)"
    )
    max_wait: float = Field(
        default=60.0,
        ge=0,
        description="longest wait (s): a Retry-After beyond it fails the step (transient) "
        "instead of hammering the server",
    )


#: ``{parent.field}`` (or ``{parent.a.b}``) in a child endpoint's path or params
PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\.([A-Za-z_][\w.\-]*)\}")


class ParentEndpoint(_Frozen):
    """The parent of a child endpoint (dlt's ``resolve``): every record of it, over all its
    pages, opens one read of the child endpoint, whose ``path``/``params`` name the
    parent's fields as ``{<name>.<field>}`` (e.g. ``path: /issues/{issues.number}/comments``).
    Same base URL, headers, auth, retries and rate limit as the child."""

    name: str = Field(
        pattern=r"^[A-Za-z_]\w*$",
        description="how the child's path/params name the parent record: {issues.number}",
    )
    path: str = Field(default="", description="the parent endpoint's path, after base_url")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="the parent's query parameters (may hold ${VAR})"
    )
    paginator: Paginator = Field(default_factory=SinglePage)
    record_path: str | None = Field(default=None, description="JSONPath of the parent records")

    @field_serializer("params")
    def _dump_params(self, params: Params) -> Params:
        return _hidden_params(params)


class RestSourceSpec(SourceConfig):
    """One REST endpoint, all its pages, as one dataset."""

    type: Literal["rest"] = "rest"
    base_url: str = Field(description="e.g. https://api.example.com/v1 (may hold ${VAR})")
    path: str = Field(default="", description="endpoint path, appended to base_url")
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="query parameters (values may hold ${VAR})"
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="request headers (values may hold ${VAR}: hidden)"
    )
    auth: Auth | None = None
    paginator: Paginator = Field(default_factory=SinglePage)
    record_path: str | None = Field(
        default=None,
        description="JSONPath of the records in a page ('data', '$.result.items', "
        "'data[*]'); default: the page itself if it is a list, else its only list value",
    )
    since_param: str | None = Field(
        default=None,
        description="incremental: query parameter that receives the last cursor value read "
        "(minus the dataset's incremental.lookback); the API returns records from it on",
    )
    since_initial: str | None = Field(
        default=None, description="since_param's value on the first run (default: not sent)"
    )
    since_format: str | None = Field(
        default=None,
        description="strftime format of a timestamp cursor in since_param "
        "(default: ISO 8601, e.g. 2024-05-01T10:00:00+00:00)",
    )
    primary_key: list[str] = Field(
        default_factory=list,
        description="the records' key: a record read twice in one run (offset pagination over a "
        "changing list) keeps the later page's copy, the other skipped (duplicate_record); "
        "a dataset with no write mode (its own or the project's default) merges on it, so a "
        "re-read record replaces its copy instead of being appended again",
    )
    dedupe: bool = Field(
        default=True, description="skip records identical to one read before in the same run"
    )
    columns: dict[str, str] | None = Field(
        default=None, description="declared column types (records that do not fit: quarantined)"
    )
    parent: ParentEndpoint | None = Field(
        default=None,
        description="read this endpoint once per record of a parent endpoint: "
        "{name: issues, path: /issues} with path: /issues/{issues.number}/comments",
    )
    include_from_parent: list[str] = Field(
        default_factory=list,
        description="parent fields copied into every child record, as _<parent>_<field> "
        "(e.g. [number] gives _issues_number)",
    )
    child_not_found: Literal["fail", "skip"] = Field(
        default="fail",
        description="a child endpoint answering 404: fail the step, or skip that parent "
        "(counted as skipped 'child_not_found' and reported in the step's warnings)",
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    rate_limit: float | None = Field(
        default=None, gt=0, description="most requests per second (client-side)"
    )
    max_pages: int = Field(
        default=100_000, ge=1, description="more pages than this fails the step (runaway loop)"
    )
    max_page_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="a larger response body fails the step"
    )
    timeout: float = Field(default=30.0, gt=0, description="seconds per request")

    @field_serializer("params")
    def _dump_params(self, params: Params) -> Params:
        return _hidden_params(params)

    @field_serializer("headers")
    def _dump_headers(self, headers: dict[str, str]) -> dict[str, str]:
        """A literal credential in a header (``Authorization: Token abc``), hidden when
        dumped; references are kept."""
        return {
            k: MASK if is_secret_header(k) and not references(v) else v for k, v in headers.items()
        }

    @field_serializer("base_url")
    def _dump_base_url(self, url: str) -> str:
        """A literal ``?api_key=…`` (or a password) in base_url, hidden when dumped."""
        return redact(url, known=False)

    def merge_keys(self) -> tuple[str, ...]:
        """``primary_key``: without a write mode, each run upserts on it (as dlt's merge)."""
        return tuple(self.primary_key)

    @model_validator(mode="after")
    def _parent_references(self) -> RestSourceSpec:
        texts = [self.path, *(str(v) for v in self.params.values())]
        named = {m.group(1) for t in texts for m in PLACEHOLDER.finditer(t)}
        if self.parent is None:
            if named:
                raise ValueError(
                    f"path/params name a parent ({', '.join(sorted(named))}) but no "
                    "'parent:' endpoint is set"
                )
            if self.include_from_parent:
                raise ValueError("'include_from_parent:' needs a 'parent:' endpoint")
            return self
        if named != {self.parent.name}:
            raise ValueError(
                f"a child endpoint's path or params must name its parent as "
                f"{{{self.parent.name}.<field>}} (found: "
                f"{', '.join(sorted(named)) or 'none'})"
            )
        return self

"""Who is asking and may they: API tokens, roles, per-dataset grants, CSRF.

- Auth is required whenever the dashboard listens beyond localhost (it refuses to start
  otherwise) or any token exists. Without it, every request is the local user, ``admin``.
- A token comes as ``Authorization: Bearer <token>`` (scripts, the JSON API) or in the
  ``lg_token`` cookie set by the login form (HttpOnly, SameSite=Strict).
- CSRF: every state-changing form carries the ``lg_csrf`` cookie's value as a hidden field
  (double submit, compared in constant time). Requests authenticated by an Authorization
  header carry no ambient credential and need none.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from fastapi import HTTPException, Request

from lockgate.state import StateStore
from lockgate.state import dashboard as dash

TOKEN_COOKIE = "lg_token"
CSRF_COOKIE = "lg_csrf"
CSRF_FIELD = "csrf"
RANK = {role: i for i, role in enumerate(dash.ROLES)}


@dataclass(frozen=True)
class Principal:
    actor: str
    role: str
    datasets: tuple[str, ...] | None  # None: all
    via_header: bool = False

    def can(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]

    def sees(self, dataset: str) -> bool:
        return self.datasets is None or dataset in self.datasets


LOCAL = Principal("local", "admin", None)


class NeedLogin(Exception):
    """Raised for a browser request without a valid token: redirect to the login form."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def principal(request: Request, state: StateStore, required: bool) -> Principal:
    if not required:
        return LOCAL
    header = request.headers.get("authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else None
    via_header = secret is not None
    secret = secret or request.cookies.get(TOKEN_COOKIE)
    tok = dash.verify_token(state, secret) if secret else None
    if tok is None:
        if via_header or request.url.path.startswith("/api/"):
            raise HTTPException(401, "a valid API token is required")
        raise NeedLogin()
    return Principal(f"token:{tok.name}", tok.role, tok.datasets, via_header)


def require(p: Principal, role: str) -> None:
    if not p.can(role):
        raise HTTPException(403, f"this needs the {role} role (you have {p.role})")


def require_dataset(p: Principal, dataset: str) -> None:
    if not p.sees(dataset):
        raise HTTPException(403, f"no grant for dataset {dataset!r}")


def csrf_token(request: Request) -> str:
    """The CSRF value of this browser (a new one if it has none yet)."""
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def check_csrf(request: Request, p: Principal, submitted: str | None) -> None:
    if p.via_header:
        return
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise HTTPException(403, "CSRF check failed: reload the page and try again")

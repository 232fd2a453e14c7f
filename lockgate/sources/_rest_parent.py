"""Parent → child endpoints of ``type: rest`` (dlt's ``resolve``).

.. code-block:: yaml

    source:
      type: rest
      base_url: https://api.example.com
      parent: {name: issues, path: /issues, paginator: {type: page_number}}
      path: /issues/{issues.number}/comments
      paginator: {type: header_link}
      include_from_parent: [number]      # every comment gets _issues_number

Every record of the parent endpoint (all its pages) opens one paginated read of the child
endpoint, its ``{issues.<field>}`` placeholders filled from that record (URL-quoted in the
path). The dataset's records are the children. A parent record that opens no child read is
never dropped silently: it is counted as skipped under a named reason and reported in the
step's warnings —

* ``parent_field_missing``: the record has no (scalar) value for a placeholder;
* ``parent_value_unsafe``: a value for a placeholder in the path is empty, ``.`` or ``..``
  (it would read another endpoint: ``/users/../repos`` is ``/repos``);
* ``duplicate_parent``: its child URL was already read in this run (the same parent twice);
* ``child_not_found``: the child endpoint answered 404 on its first page and
  ``child_not_found: skip`` is set (the default, ``fail``, fails the step).

A child answering 5xx/429 is retried like any page (``retry:``); when the retries run out,
the step fails and nothing is published.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from lockgate.sources._rest_config import PLACEHOLDER
from lockgate.sources._rest_http import NotFound, Page, PageReader, _with_params, value_at

#: warnings listed one by one per reason; beyond, only the count
MAX_NOTES = 5

#: path values that would change the path itself (dot segments are resolved by the client)
UNSAFE_IN_PATH = frozenset({"", ".", ".."})


class UnsafeValue(Exception):
    """A parent value that cannot go into the child path (see ``UNSAFE_IN_PATH``)."""


@dataclass
class ParentOutcome:
    """What the child reads skipped (parents, by reason) and what the step should report."""

    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, note: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        self.notes.setdefault(reason, []).append(note)

    def warnings(self, parent: str) -> list[str]:
        out = []
        for reason, n in self.skipped.items():
            shown = "; ".join(self.notes[reason][:MAX_NOTES])
            more = f" (and {n - MAX_NOTES} more)" if n > MAX_NOTES else ""
            out.append(f"{n} {parent} record(s) skipped ({reason}): {shown}{more}")
        return out


def _text(value: Any) -> str | None:
    """A parent value as it goes into a URL (None: not a scalar)."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fill(template: str, name: str, record: Any, *, in_path: bool) -> str | None:
    """``template`` with every ``{name.field}`` replaced by the record's value (None when
    one is missing or not a scalar). Raises ``UnsafeValue`` for an empty, ``.`` or ``..``
    value in a path.

    >>> fill("/issues/{issues.number}/comments", "issues", {"number": 7}, in_path=True)
    '/issues/7/comments'
    >>> fill("/u/{users.login}", "users", {"login": "a/b c"}, in_path=True)
    '/u/a%2Fb%20c'
    >>> fill("/u/{users.id}", "users", {"name": "x"}, in_path=True) is None
    True
    >>> fill("/u/{users.login}/repos", "users", {"login": ".."}, in_path=True)
    Traceback (most recent call last):
    ...
    lockgate.sources._rest_parent.UnsafeValue: ..
    """
    missing = False

    def one(m: Any) -> str:
        nonlocal missing
        value = value_at(record, m.group(2)) if isinstance(record, dict) else None
        text = _text(value) if m.group(1) == name else None
        if text is None:
            missing = True
            return ""
        if in_path and text in UNSAFE_IN_PATH:
            raise UnsafeValue(text)
        return quote(text, safe="") if in_path else text

    out = PLACEHOLDER.sub(one, template)
    return None if missing else out


def child_pages(reader: PageReader, since: str | None, outcome: ParentOutcome) -> Iterator[Page]:
    """Every page of the child endpoint, once per parent record (see the module docstring);
    child records carry the ``include_from_parent`` fields."""
    config = reader.config
    parent = config.parent
    assert parent is not None
    child = reader.endpoint()
    extra_names = {f: f"_{parent.name}_{f.replace('.', '_')}" for f in config.include_from_parent}
    read: set[str] = set()
    for ppage in reader.pages(None, reader.parent_endpoint()):
        for i, record in enumerate(ppage.records, 1):
            where = f"page {ppage.number} record {i} <{ppage.url}>"
            try:
                url = fill(child.url, parent.name, record, in_path=True)
            except UnsafeValue as e:
                outcome.skip("parent_value_unsafe", f"{where}: {str(e)!r}"[:300])
                continue
            params = {
                k: fill(v, parent.name, record, in_path=False) for k, v in child.params.items()
            }
            if url is None or any(v is None for v in params.values()):
                outcome.skip("parent_field_missing", where)
                continue
            filled = {k: v for k, v in params.items() if v is not None}
            key = _with_params(url, filled)
            if key in read:
                outcome.skip("duplicate_parent", where)
                continue
            read.add(key)
            extra = {col: value_at(record, f) for f, col in extra_names.items()}
            endpoint = replace(child, url=url, params=filled)
            yielded = False
            try:
                for page in reader.pages(since, endpoint):
                    yielded = True
                    if extra:
                        recs = [{**r, **extra} if isinstance(r, dict) else r for r in page.records]
                        page = Page(page.number, page.url, recs, page.exact)
                    yield page
            except NotFound:
                if config.child_not_found != "skip" or yielded:
                    raise
                outcome.skip("child_not_found", f"{where}: {reader.show(url, filled)}")

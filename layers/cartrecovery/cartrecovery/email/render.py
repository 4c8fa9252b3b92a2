"""Render a flow step's email (subject, HTML, text) from Jinja2 templates.

Templates live under ``<templates_dir>/<locale>/<flow>/step<N>.{subject,html,txt}.j2``; partials that start
with ``_`` sit in ``<templates_dir>/<locale>/``. HTML templates are autoescaped, subject and text are not.
Unknown variables raise (``StrictUndefined``), so a typo or a missing context key fails the render before
anything is claimed or sent, rather than mailing a blank.

Store-supplied sources (``overrides``) run in Jinja's sandbox, like the shipped ones, so a template cannot
reach Python internals. A ``TemplateError`` names the template and line where rendering failed (``template``,
``line``), so a broken upload can be pointed at exactly.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

import cartrecovery
from cartrecovery.domain.text import NOT_UNICODE, has_unpaired_surrogate
from cartrecovery.email.money import format_money

TEMPLATES_DIR_ENV = "CARTRECOVERY_TEMPLATES_DIR"
# Tried in order after the requested locale (and its language part) when its templates are missing.
FALLBACK_LOCALES = ("ja", "en")
_BLANK_RUNS = re.compile(r"\n{3,}")
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# Renderers kept by ``with_overrides`` (one per store with uploaded templates, in a warm process).
MAX_DERIVED_RENDERERS = 64
# What a store's template may build and emit. An email is some tens of KB (Gmail clips past 102 KB); a
# subject a line. Uploads are checked against these; ``_EmailSandbox`` holds the first two at every render.
MAX_BUILT = 100_000  # characters or items made by one ``*`` ("x" * 50000000 was a 50 MB subject)
MAX_EXPONENT = 1_000  # of ``**`` (10 ** 10 ** 8 would take minutes of CPU)
MAX_RANGE = 1_000  # items of one ``range()``: emails list a few items, never thousands
MAX_SUBJECT_CHARS = 500
MAX_PART_CHARS = 1_000_000  # of the HTML or the text


class _EmailSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, which also bounds what a template can make with ``*``, ``**`` and
    ``range()``: a store's template runs in the send function, and one that builds megabytes or loops for
    minutes would time out every send of the store (docs/decisions.md)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for made, times in ((left, right), (right, left)):
                if isinstance(made, str | list | tuple) and isinstance(times, int) and len(made) * times > MAX_BUILT:
                    raise SecurityError(f"'*' would make {len(made) * times:,} items; at most {MAX_BUILT:,}")
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"'**' with an exponent over {MAX_EXPONENT:,}")
        return super().call_binop(context, operator, left, right)


def _bounded_range(*args: int) -> range:
    made = range(*args)
    if len(made) > MAX_RANGE:
        raise SecurityError(f"range() of {len(made):,} items; at most {MAX_RANGE:,}")
    return made


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


class TemplateError(Exception):
    """A template is missing, does not compile, fails to render, or uses an undefined variable.

    ``template`` and ``line`` say where (the innermost template being rendered), when that is known."""

    def __init__(self, message: str, template: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.template = template
        self.line = line


class _OverrideLoader(jinja2.BaseLoader):
    """Templates from a mapping, each carrying its own name as file name, so errors and tracebacks can say
    which override failed (Jinja's ``DictLoader`` calls them all ``<template>``)."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = mapping

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template not in self.mapping:
            raise jinja2.TemplateNotFound(template)
        source = self.mapping[template]
        return source, template, lambda: self.mapping.get(template) == source

    def list_templates(self) -> list[str]:
        return sorted(self.mapping)


def default_templates_dir() -> Path:
    """``$CARTRECOVERY_TEMPLATES_DIR``, else the copy inside the installed package (Lambda layer), else the repo's."""
    configured = os.environ.get(TEMPLATES_DIR_ENV)
    if configured:
        return Path(configured)
    packaged = Path(cartrecovery.__file__).resolve().parent / "templates"
    if packaged.is_dir():
        return packaged
    for parent in Path(__file__).resolve().parents:
        if (parent / "templates").is_dir() and (parent / "pyproject.toml").is_file():
            return parent / "templates"
    return packaged


def _tidy_text(text: str) -> str:
    """At most one blank line in a row and one final newline, so optional sections leave no gaps."""
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)) + "\n"


def _money_filter(amount: Decimal | int | str, currency: str, locale: str) -> str:
    return format_money(Decimal(amount) if isinstance(amount, str) else amount, currency, locale)


class EmailRenderer:
    """Renders step emails; build one per process and reuse it (compiled templates are cached)."""

    def __init__(
        self,
        templates_dir: Path | None = None,
        overrides: Mapping[str, str] | None = None,
        *,
        check_text: bool = False,
    ) -> None:
        """``check_text``: also refuse output that no email can carry (see ``_render``); for checking uploads,
        so that sends do not pay for a scan that only a store's own templates could ever fail."""
        self.check_text = check_text
        self.templates_dir = templates_dir if templates_dir is not None else default_templates_dir()
        self._overrides = {name.replace(os.sep, "/").lstrip("/"): source for name, source in (overrides or {}).items()}
        loader = jinja2.ChoiceLoader(
            [_OverrideLoader(self._overrides), jinja2.FileSystemLoader(self.templates_dir, encoding="utf-8")]
        )
        self._env = _EmailSandbox(
            loader=loader,
            autoescape=jinja2.select_autoescape(["html", "html.j2"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            # Templates do not change under a running process; skip the mtime check on every render.
            auto_reload=False,
            cache_size=-1,
        )
        self._env.filters["money"] = _money_filter
        self._env.globals["range"] = _bounded_range
        self._locales = self._find_locales()
        self._exists_cache: dict[str, bool] = {}
        self._derived: dict[str, EmailRenderer] = {}
        self._derived_lock = threading.Lock()

    def with_overrides(self, overrides: Mapping[str, str] | None) -> EmailRenderer:
        """This renderer with ``overrides`` on top (a store's uploaded templates); ``self`` when there are none.

        Renderers are kept per distinct set of overrides, so a warm process compiles a store's templates once
        and picks up a new upload (a different set) at once."""
        if not overrides:
            return self
        digest = hashlib.sha256()
        for name in sorted(overrides):
            digest.update(f"{len(name)}:{name}{len(overrides[name])}:".encode())
            digest.update(overrides[name].encode("utf-8", "surrogatepass"))
        key = digest.hexdigest()
        with self._derived_lock:  # the local stack sends from several threads through one renderer
            derived = self._derived.get(key)
            if derived is None:
                derived = EmailRenderer(
                    self.templates_dir, {**self._overrides, **overrides}, check_text=self.check_text
                )
                while len(self._derived) >= MAX_DERIVED_RENDERERS:
                    self._derived.pop(next(iter(self._derived)))
                self._derived[key] = derived
            return derived

    def available_locales(self) -> list[str]:
        """Locales that have a template folder (or overrides), sorted."""
        return list(self._locales)

    def render(self, flow: str, step: int, locale: str, context: Mapping[str, Any]) -> RenderedEmail:
        """The three parts of ``flow`` step ``step``.

        Locale resolution: ``locale`` as given, then its language part (``ja-JP`` → ``ja``), then ``ja``, then
        ``en``; the first that has this step's subject template is used for all three parts.
        """
        chosen = self._resolve_locale(flow, step, locale)
        base = f"{chosen}/{flow}/step{step}"
        subject = " ".join(self._render(f"{base}.subject.j2", context).split())
        if not subject:
            raise TemplateError(f"{base}.subject.j2: the subject is empty")
        email = RenderedEmail(
            subject=subject,
            html=self._render(f"{base}.html.j2", context),
            text=_tidy_text(self._render(f"{base}.txt.j2", context)),
        )
        if self.check_text:
            parts = (
                ("subject", email.subject, MAX_SUBJECT_CHARS),
                ("html", email.html, MAX_PART_CHARS),
                ("txt", email.text, MAX_PART_CHARS),
            )
            for part, made, limit in parts:
                if len(made) > limit:
                    name = f"{base}.{part}.j2"
                    raise TemplateError(f"{name}: the {part} is {len(made):,} characters; at most {limit:,}", name)
        return email

    def compile(self, name: str) -> None:
        """Compile one template without rendering it: raises ``TemplateError`` (with its line) on a syntax
        error, so a partial that no step uses yet is checked too."""
        try:
            self._env.get_template(name)
        except Exception as exc:
            raise self._error(exc, name) from exc

    def _render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            rendered = self._env.get_template(name).render(context)
        except Exception as exc:  # UndefinedError, SecurityError, a missing include, a filter's error
            raise self._error(exc, name) from exc
        if self.check_text and has_unpaired_surrogate(rendered):
            # Events and settings are checked for these where they come in; a template's own string
            # literal ("\ud800") is what is left, and SES could not send the result.
            raise TemplateError(f"{name}: the output {NOT_UNICODE}; no email can carry it", name)
        return rendered

    def _error(self, exc: Exception, name: str) -> TemplateError:
        if isinstance(exc, jinja2.TemplateSyntaxError):
            broken = exc.name or name
            return TemplateError(f"{broken}:{exc.lineno}: {exc.message}", broken, exc.lineno)
        where, line = self._failed_at(exc)
        at = f"{where}:{line}" if where and line else name
        via = f" (rendering {name})" if where and where != name else ""
        if isinstance(exc, jinja2.TemplateNotFound):
            message = f"{at}: template not found: {exc.name}{via}"
        else:
            message = f"{at}: {type(exc).__name__}: {exc}{via}"
        return TemplateError(message, where or name, line)

    def _failed_at(self, exc: BaseException) -> tuple[str | None, int | None]:
        """The innermost template frame of ``exc``'s traceback: (template name, line), or (None, None)."""
        root = str(self.templates_dir.resolve())
        found: tuple[str | None, int | None] = (None, None)
        for frame, lineno in traceback.walk_tb(exc.__traceback__):
            filename = frame.f_code.co_filename
            if filename in self._overrides:
                found = (filename, lineno)
            elif filename.endswith(".j2"):
                path = Path(filename).resolve()
                if str(path).startswith(root + os.sep):
                    found = (path.relative_to(root).as_posix(), lineno)
        return found

    def _resolve_locale(self, flow: str, step: int, locale: str) -> str:
        if not _PATH_SEGMENT.fullmatch(flow):
            raise TemplateError(f"invalid flow name {flow!r}")
        requested = locale.strip()
        candidates = [requested, requested.replace("_", "-").split("-")[0].lower(), *FALLBACK_LOCALES]
        for candidate in dict.fromkeys(c for c in candidates if _PATH_SEGMENT.fullmatch(c)):
            if self._exists(f"{candidate}/{flow}/step{step}.subject.j2"):
                return candidate
        raise TemplateError(f"no templates for flow {flow!r} step {step} in {requested!r} or {FALLBACK_LOCALES}")

    def _exists(self, name: str) -> bool:
        if name in self._overrides:
            return True
        if name not in self._exists_cache:
            self._exists_cache[name] = (self.templates_dir / name).is_file()
        return self._exists_cache[name]

    def _find_locales(self) -> list[str]:
        found = {name.split("/", 1)[0] for name in self._overrides if "/" in name}
        if self.templates_dir.is_dir():
            found.update(p.name for p in self.templates_dir.iterdir() if p.is_dir() and p.name[0] not in "._")
        return sorted(found)

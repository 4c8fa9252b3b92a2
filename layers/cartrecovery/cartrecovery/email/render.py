"""Render a flow step's email (subject, HTML, text) from Jinja2 templates.

Templates live under ``<templates_dir>/<locale>/<flow>/step<N>.{subject,html,txt}.j2``; partials that start
with ``_`` sit in ``<templates_dir>/<locale>/``. HTML templates are autoescaped, subject and text are not.
Unknown variables raise (``StrictUndefined``), so a typo or a missing context key fails the render before
anything is claimed or sent, rather than mailing a blank.

Store-supplied sources (``overrides``) run in Jinja's sandbox, like the shipped ones, so a template cannot
reach Python internals.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

import cartrecovery
from cartrecovery.email.money import format_money

TEMPLATES_DIR_ENV = "CARTRECOVERY_TEMPLATES_DIR"
# Tried in order after the requested locale (and its language part) when its templates are missing.
FALLBACK_LOCALES = ("ja", "en")
_BLANK_RUNS = re.compile(r"\n{3,}")
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


class TemplateError(Exception):
    """A template is missing, does not compile, fails to render, or uses an undefined variable."""


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

    def __init__(self, templates_dir: Path | None = None, overrides: Mapping[str, str] | None = None) -> None:
        self.templates_dir = templates_dir if templates_dir is not None else default_templates_dir()
        self._overrides = {name.replace(os.sep, "/").lstrip("/"): source for name, source in (overrides or {}).items()}
        loader = jinja2.ChoiceLoader(
            [jinja2.DictLoader(self._overrides), jinja2.FileSystemLoader(self.templates_dir, encoding="utf-8")]
        )
        self._env = ImmutableSandboxedEnvironment(
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
        self._locales = self._find_locales()
        self._exists_cache: dict[str, bool] = {}

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
        return RenderedEmail(
            subject=subject,
            html=self._render(f"{base}.html.j2", context),
            text=_tidy_text(self._render(f"{base}.txt.j2", context)),
        )

    def _render(self, name: str, context: Mapping[str, Any]) -> str:
        try:
            return self._env.get_template(name).render(context)
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template not found: {exc.name} (needed by {name})") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.name or name}:{exc.lineno}: {exc.message}") from exc
        except Exception as exc:  # UndefinedError, SecurityError, or a filter's error: all mean "cannot send"
            raise TemplateError(f"{name}: {type(exc).__name__}: {exc}") from exc

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

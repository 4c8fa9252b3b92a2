"""A store's own email templates ("overrides"): read from a folder laid out like ``templates/`` and checked
before they are stored.

A folder holds ``<locale>/<flow>/step<N>.{subject,html,txt}.j2`` and shared partials ``<locale>/_<name>.j2``;
each file replaces the shipped file of the same name for that store, and everything else keeps coming from
the shipped templates. ``check_overrides`` renders every step of every flow in every locale the folder
touches, with the overrides applied, against the sample data (a full context and one with every optional
value missing), once for each A/B variant the store lists for the step, so an undefined variable or a
syntax error is reported with its file and line before a single shopper could be affected.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cartrecovery.domain.store import DEFAULT_VARIANTS
from cartrecovery.email.render import EmailRenderer, TemplateError
from cartrecovery.email.samples import sample_context, sparse_context

# DynamoDB items are at most 400 KB; the overrides share one item with its key and timestamp.
MAX_OVERRIDE_BYTES = 350 * 1024
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_-]*"
TEMPLATE_NAME = re.compile(
    rf"^(?P<locale>{_SEGMENT})/(?:(?P<flow>{_SEGMENT})/step(?P<step>[1-9][0-9]{{0,2}})\.(?:subject|html|txt)"
    rf"|_[A-Za-z0-9][A-Za-z0-9_.-]*)\.j2\Z"
)
_STEP_SUBJECT = re.compile(rf"^(?P<locale>{_SEGMENT})/(?P<flow>{_SEGMENT})/step(?P<step>[1-9][0-9]*)\.subject\.j2\Z")
SPARSE_HINT = (
    "no customer name, shop URL, cart link, images, variants, coupon, recommendations, reassurance, "
    "free-shipping note or help links; "
    "wrap optional values in {% if ... %}"
)
LAYOUT_HINT = "<locale>/<flow>/step<N>.subject.j2, .html.j2, .txt.j2 or <locale>/_<partial>.j2"


@dataclass(frozen=True)
class Problem:
    """What is wrong, and where: ``file`` is a template name (``ja/cart_recovery/step1.html.j2``)."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}" if where else self.message


class InvalidOverrides(Exception):
    """The templates cannot be used; ``problems`` lists each with its file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def read_overrides(directory: Path) -> dict[str, str]:
    """Every template under ``directory`` by name (``ja/cart_recovery/step1.html.j2``); hidden files are
    ignored. Raises ``InvalidOverrides`` for a file that is not a template name or not UTF-8, or an empty folder."""
    if not directory.is_dir():
        raise InvalidOverrides([Problem(str(directory), None, "not a folder")])
    templates: dict[str, str] = {}
    problems: list[Problem] = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        name = relative.as_posix()
        if not TEMPLATE_NAME.match(name):
            problems.append(Problem(name, None, f"not a template name; expected {LAYOUT_HINT}"))
            continue
        try:
            templates[name] = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            problems.append(Problem(name, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
    if not templates and not problems:
        problems.append(Problem(str(directory), None, f"no templates found; expected {LAYOUT_HINT}"))
    if problems:
        raise InvalidOverrides(problems)
    return templates


def override_bytes(overrides: Mapping[str, str]) -> int:
    """What the overrides take in the store's item: names and sources, UTF-8."""
    return sum(len(name.encode("utf-8")) + len(source.encode("utf-8")) for name, source in overrides.items())


def flow_steps(templates_dir: Path, names: Iterable[str] = ()) -> list[tuple[str, int]]:
    """Every (flow, step) that has a subject template in any locale, shipped or in ``names``."""
    shipped = [path.relative_to(templates_dir).as_posix() for path in templates_dir.glob("*/*/step*.subject.j2")]
    matches = (_STEP_SUBJECT.match(name) for name in [*names, *shipped])
    return sorted({(m["flow"], int(m["step"])) for m in matches if m})


def check_overrides(
    overrides: Mapping[str, str],
    templates_dir: Path | None = None,
    variants: Mapping[tuple[str, int], tuple[str, ...]] | None = None,
) -> list[Problem]:
    """Every problem that stops these overrides from being used; empty when they are fine.

    Checks names and total size, compiles every file, then renders every step of every flow in every locale
    the overrides touch (with locale fallback, as a send would) against a full and a sparse sample context.
    ``variants``: the A/B variants of each (flow, step) that lists its own; such a step is rendered once per
    variant (a branch on ``email_variant`` that no other variant takes is only run by its own), and a problem
    found there names the variants it was found in. Every other step is rendered as variant ``a``."""
    problems = [
        Problem(name, None, f"not a template name; expected {LAYOUT_HINT}")
        for name in overrides
        if not TEMPLATE_NAME.match(name)
    ]
    size = override_bytes(overrides)
    if size > MAX_OVERRIDE_BYTES:
        problems.append(
            Problem(
                "",
                None,
                f"the templates take {size:,} bytes; a store's templates may take at most {MAX_OVERRIDE_BYTES:,} "
                "bytes in all (they are kept in one DynamoDB item, at most 400 KB): leave out the files you "
                "did not change",
            )
        )
    if problems:
        return problems
    variants = variants or {}
    renderer = EmailRenderer(templates_dir, overrides, check_text=True)
    # Each problem once, with the variants it was found in; None once it was also found where no listed
    # variant is in play (a compile error, a step without variants): it is then nobody's variant's, and is
    # reported without one, so a store without variants reads exactly as it did before variants existed.
    found: dict[Problem, tuple[str, ...] | None] = {}

    def note(error: TemplateError, sparse: bool = False, variant: str | None = None) -> None:
        message = _message(error)
        if sparse:
            message += f" (with optional values empty: {SPARSE_HINT})"
        if error.template and error.template not in overrides:
            message += " [in a shipped template, used with your files: check what your files define or pass]"
        problem = Problem(error.template or "", error.line, message)
        earlier = found.get(problem, ())
        if earlier is None or variant is None:
            found[problem] = None
        elif variant not in earlier:
            found[problem] = (*earlier, variant)

    for name in sorted(overrides):
        try:
            renderer.compile(name)
        except TemplateError as error:
            note(error)
    locales = sorted({name.split("/", 1)[0] for name in overrides})
    steps = [(locale, flow, step) for locale in locales for flow, step in flow_steps(renderer.templates_dir, overrides)]
    slow = False
    try:
        with _time_limit(CHECK_SECONDS):
            for locale, flow, step in steps:
                listed = variants.get((flow, step))
                for variant in listed or DEFAULT_VARIANTS:
                    for context, sparse in ((sample_context, False), (sparse_context, True)):
                        sample = context(flow, step, locale)
                        sample["email_variant"] = variant
                        try:
                            renderer.render(flow, step, locale, sample)
                        except TemplateError as error:
                            note(error, sparse=sparse, variant=variant if listed else None)
                            break  # the full sample failed: the sparse one would only say it again
    except _TooSlow:
        slow = True
    problems = [_with_variants(problem, named) for problem, named in found.items()]
    if slow:
        problems.append(
            Problem("", None, f"rendering the steps took over {CHECK_SECONDS} s (each takes milliseconds): any loops?")
        )
    return problems


def _with_variants(problem: Problem, variants: tuple[str, ...] | None) -> Problem:
    """``problem`` naming the A/B variants it was found in: ``... (variant b)``, ``... (variants a, b)``."""
    if not variants:
        return problem
    label = f"variant {variants[0]}" if len(variants) == 1 else f"variants {', '.join(variants)}"
    return Problem(problem.file, problem.line, f"{problem.message} ({label})")


# Every step of every locale renders in milliseconds; a template that loops for longer would time out each
# send of the store. Checked where a signal timer can interrupt (the CLI's main thread).
CHECK_SECONDS = 10


class _TooSlow(BaseException):
    """Not an Exception: it must pass the renderer's ``except Exception`` that turns errors into messages."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise _TooSlow

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _message(error: TemplateError) -> str:
    """The error without the ``file:line:`` prefix the renderer puts in front (``Problem`` adds it back)."""
    text = str(error)
    prefix = f"{error.template}:{error.line}: " if error.line else f"{error.template}: "
    return text.removeprefix(prefix)

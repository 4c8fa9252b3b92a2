"""``cartrecovery templates upload|show|reset`` and ``cartrecovery preview``: a store's own email templates.

cartrecovery [--local | --stack NAME] templates upload --store shop1 DIR
cartrecovery [--local | --stack NAME] templates show --store shop1 [--name ja/cart_recovery/step1.html.j2]
cartrecovery [--local | --stack NAME] templates reset --store shop1
cartrecovery [--local | --stack NAME] preview --store shop1 --step 1 [--flow cart_recovery] [--locale ja]
                                      [--variant b] [--dir DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cartrecovery.cli.common import ServicesFor, find_store, no_store
from cartrecovery.domain.store import CART_RECOVERY
from cartrecovery.email.overrides import InvalidOverrides, read_overrides
from cartrecovery.email.render import TemplateError
from cartrecovery.usecases.templates import UnknownStore, UnknownVariant, preview_email, upload_templates

NowFor = Callable[[argparse.Namespace], datetime]


def _rejected(problems: InvalidOverrides, what: str) -> int:
    print(f"error: {what}; nothing was stored:", file=sys.stderr)
    for problem in problems.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def cmd_upload(args: argparse.Namespace, services: ServicesFor) -> int:
    directory = Path(args.dir)
    try:
        overrides = read_overrides(directory)
    except InvalidOverrides as exc:
        return _rejected(exc, f"{directory} cannot be uploaded")
    svc = services(args)
    try:
        uploaded = upload_templates(svc.stores, svc.stores, args.store, overrides, svc.clock)
    except UnknownStore:
        no_store(args.store)
        return 1
    except InvalidOverrides as exc:
        return _rejected(exc, "the templates do not render with the sample data")
    for warning in uploaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"stored {len(uploaded.names)} template(s), {uploaded.size:,} bytes, for store {args.store}:")
    for name in uploaded.names:
        print(f"  {name}")
    print("They replace any earlier upload; every other template is the shipped one.")
    if not args.local:
        print("Sends use them within the send function's store cache time (STORE_CACHE_SECONDS, 60 s).")
    return 0


def cmd_show(args: argparse.Namespace, services: ServicesFor) -> int:
    svc = services(args)
    if find_store(svc, args.store) is None:
        return 1
    overrides = svc.stores.get_templates(args.store)
    if args.name:
        if args.name not in overrides:
            print(f"error: store {args.store!r} has no uploaded {args.name}", file=sys.stderr)
            return 1
        sys.stdout.write(overrides[args.name])
        return 0
    if not overrides:
        print(f"store {args.store} uses the shipped templates (none uploaded)")
        return 0
    print(f"store {args.store}: {len(overrides)} uploaded template(s); the rest are the shipped ones")
    for name in sorted(overrides):
        print(f"  {name}  ({len(overrides[name].encode('utf-8')):,} bytes)")
    return 0


def cmd_reset(args: argparse.Namespace, services: ServicesFor) -> int:
    svc = services(args)
    if find_store(svc, args.store) is None:
        return 1
    removed = svc.stores.delete_templates(args.store)
    if removed:
        print(f"removed the uploaded templates of store {args.store}; it uses the shipped templates again")
    else:
        print(f"store {args.store} had no uploaded templates")
    return 0


def cmd_preview(args: argparse.Namespace, services: ServicesFor, now_for: NowFor) -> int:
    overrides: dict[str, str] | None = None
    if args.dir:
        try:
            overrides = read_overrides(Path(args.dir))
        except InvalidOverrides as exc:
            return _rejected(exc, f"{args.dir} cannot be previewed")
    store = None
    public_base_url = "https://recovery.example.com"
    now = datetime.now(UTC)
    if args.store:
        svc = services(args)
        store = find_store(svc, args.store)
        if store is None:
            return 1
        if overrides is None:
            overrides = svc.stores.get_templates(args.store)
        public_base_url = svc.settings.public_base_url
        now = now_for(args)
    try:
        preview = preview_email(
            store,
            overrides,
            args.step,
            flow=args.flow,
            locale=args.locale,
            now=now,
            public_base_url=public_base_url,
            variant=args.variant,
        )
    except (TemplateError, UnknownVariant) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, or no permission
        print(f"error: --out {args.out} cannot be a folder to write to: {exc.strerror or exc}", file=sys.stderr)
        return 1
    # A chosen variant is in the file names, so that the previews of a step's variants sit side by side.
    stem = f"step{args.step}.{preview.locale}" + (f".{preview.variant}" if args.variant else "")
    html_path = out / f"{stem}.html"
    text_path = out / f"{stem}.txt"
    html_path.write_text(preview.email.html, encoding="utf-8")
    text_path.write_text(preview.email.text, encoding="utf-8")
    if args.locale and preview.locale != args.locale:
        print(f"note: no {args.locale!r} templates; a shopper with that locale gets {preview.locale!r}")
    if args.variant is None and len(preview.variants) > 1:
        listed = ", ".join(preview.variants)
        print(f"note: step {args.step} lists the variants {listed}; this is {preview.variant} (choose with --variant)")
    print(f"subject: {preview.email.subject}")
    print(f"html:    {html_path}")
    print(f"text:    {text_path}")
    return 0


def add_template_parsers(commands: Any, services: ServicesFor, now_for: NowFor) -> None:
    """Register ``templates`` and ``preview`` on the CLI's subcommands."""
    templates = commands.add_parser("templates", help="a store's own email templates: upload, show, reset")
    sub = templates.add_subparsers(dest="templates_command", required=True)
    upload = sub.add_parser(
        "upload",
        help="check and store a folder of templates for a store (replaces any earlier upload)",
        description="DIR is laid out like templates/: <locale>/<flow>/step<N>.{subject,html,txt}.j2 and "
        "<locale>/_<partial>.j2. Every step of every flow in every locale the folder touches is rendered with "
        "sample data first; any error rejects the whole upload, naming file and line.",
    )
    upload.add_argument("--store", required=True)
    upload.add_argument("dir", metavar="DIR")
    upload.set_defaults(func=lambda args: cmd_upload(args, services))
    show = sub.add_parser("show", help="list a store's uploaded templates, or print one (--name)")
    show.add_argument("--store", required=True)
    show.add_argument("--name", help="print this template's source, e.g. ja/cart_recovery/step1.html.j2")
    show.set_defaults(func=lambda args: cmd_show(args, services))
    reset = sub.add_parser("reset", help="remove a store's uploaded templates (back to the shipped ones)")
    reset.add_argument("--store", required=True)
    reset.set_defaults(func=lambda args: cmd_reset(args, services))

    preview = commands.add_parser(
        "preview",
        help="render one step with sample data to stepN.<locale>.html and .txt",
        description="Renders a step as a shopper would get it, for a sample cart: with --store, the store's "
        "settings and uploaded templates (or those in --dir, not yet uploaded); without, the sample shop.",
    )
    preview.add_argument("--store", help="the store whose settings and templates to use")
    preview.add_argument("--step", type=int, required=True)
    preview.add_argument("--flow", default=CART_RECOVERY)
    preview.add_argument("--locale", help="the shopper's locale, e.g. ja or en (default: the store's)")
    preview.add_argument(
        "--variant",
        help="the A/B variant to show, one the step lists in the store's settings (default: its first, a); "
        "written to stepN.<locale>.<variant>.html and .txt",
    )
    preview.add_argument("--dir", help="use the templates in this folder instead of the uploaded ones")
    preview.add_argument("--out", default=".", help="folder to write the files to (default: the current one)")
    preview.set_defaults(func=lambda args: cmd_preview(args, services, now_for))

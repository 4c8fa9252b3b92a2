"""``cartrecovery``: the operator CLI.

cartrecovery [--local | --stack NAME] store create --id shop1 --name "..." --sender-email shop@example.jp
cartrecovery [--local | --stack NAME] store update --id shop1 [--settings patch.json] [--quiet-hours 22:00-07:00]
cartrecovery [--local | --stack NAME] store show --id shop1
cartrecovery [--local | --stack NAME] store rotate-secret --id shop1 [--shopify] [--overlap-hours 24]
cartrecovery [--local | --stack NAME] store revoke-secret --id shop1 [--shopify]
cartrecovery [--local | --stack NAME] report --store shop1 [--from 2026-12-01] [--to 2026-12-31] [--json]
cartrecovery [--local | --stack NAME] explain --store shop1 --cart c-789
cartrecovery [--local | --stack NAME] templates upload|show|reset --store shop1 [DIR]   (see cli/templates.py)
cartrecovery [--local | --stack NAME] coupons upload|show --store shop1 [FILE]          (see cli/coupons.py)
cartrecovery [--local | --stack NAME] consent show --store shop1 --email taro@example.jp    (see cli/consent.py)
cartrecovery [--local | --stack NAME] preview --store shop1 --step 1 [--locale ja] [--variant b] [--out DIR]
cartrecovery [--local | --stack NAME] catalog upload|show --store shop1 [FILE]     (see cli/catalog.py)
cartrecovery send-event --example cart --email taro@example.jp      (signs and posts to the local stack)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cartrecovery.cli.catalog import add_catalog_parsers
from cartrecovery.cli.common import find_store, no_store
from cartrecovery.cli.config import local_runtime, resolve_settings
from cartrecovery.cli.consent import add_consent_parser
from cartrecovery.cli.coupons import add_coupon_parsers
from cartrecovery.cli.send_event import add_send_event_parser, business_now
from cartrecovery.cli.templates import add_template_parsers
from cartrecovery.clock import SystemClock, isoformat, parse_rfc3339
from cartrecovery.domain.store import Store
from cartrecovery.domain.text import has_unpaired_surrogate
from cartrecovery.ports import AlreadyExists, UnknownStore
from cartrecovery.settings import INGEST_STORE_CACHE_SECONDS, ConfigError
from cartrecovery.usecases.erase import erase_shopper
from cartrecovery.usecases.report import COLUMNS, ab_summary, build_report, holdout_summary
from cartrecovery.usecases.stores import InvalidStore, create_store, revoke_secrets, rotate_secret, update_store
from cartrecovery.usecases.templates import unsendable_step
from cartrecovery.wiring import Services


def _services(args: argparse.Namespace) -> Services:
    return Services(resolve_settings(local=args.local, stack=args.stack, region=args.region), SystemClock())


_sleep = time.sleep  # replaced by the tests
MAX_OVERLAP_HOURS = 8760  # a year: longer is no rotation at all


def _wait_out_ingest_cache(args: argparse.Namespace) -> None:
    """A warm ingest function answers from a copy of the store up to ``INGEST_STORE_CACHE_SECONDS`` old, in
    which a secret that has just ended is still in force. Waiting that out before reporting makes "ended"
    true everywhere when the command returns. The local stack's functions keep no copy."""
    if args.local:
        return
    print(
        f"waiting {INGEST_STORE_CACHE_SECONDS:g} s for warm ingest functions to drop their copy of the store",
        file=sys.stderr,
    )
    _sleep(INGEST_STORE_CACHE_SECONDS)


# A store item (settings, secrets, keys) must fit in DynamoDB's 400 KB; real settings are a few KB.
MAX_SETTINGS_CHARS = 100_000


def _settings_file(path: str | None) -> dict[str, Any]:
    """The ``--settings`` file's JSON object; ``InvalidStore`` says what is wrong with the file."""
    if not path:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidStore(f"cannot read --settings {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidStore(f"--settings {path} is not valid JSON: {str(exc).splitlines()[0]}") from exc
    if len(text) > MAX_SETTINGS_CHARS:
        raise InvalidStore(f"--settings {path} is over {MAX_SETTINGS_CHARS:,} characters (settings are a few KB)")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidStore(f"--settings {path} is not valid JSON: {str(exc).splitlines()[0]}") from exc
    except RecursionError:
        raise InvalidStore(f"--settings {path} is nested too deeply to be settings") from None
    if not isinstance(data, dict):
        raise InvalidStore(f"--settings {path} must hold a JSON object of settings, not {type(data).__name__}")
    return data


# What ``store show`` prints beside the settings; a file made from its output may hold them. Secrets change
# only through rotate-secret and revoke-secret.
SHOWN_NOT_SETTINGS = ("webhook_secrets", "shopify_secrets")


def _settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--settings`` file's object with the setting flags laid over it (the flags win)."""
    flags = {
        "name": args.name,
        "sender_email": args.sender_email,
        "sender_name": args.sender_name,
        "url": args.url,
        "locale": args.locale,
        "timezone": args.timezone,
        "quiet_hours": args.quiet_hours,
    }
    legal_flags = {"sender_name": args.legal_name, "address": args.address, "contact": args.contact}
    data = _settings_file(args.settings)
    shown = [key for key in SHOWN_NOT_SETTINGS if key in data]
    if shown:
        print(f"note: {' and '.join(shown)} (as store show prints them) are not settings; left out", file=sys.stderr)
        for key in shown:
            del data[key]
    data.update({k: v for k, v in flags.items() if v})
    if any(legal_flags.values()):
        legal = data.get("legal") or {}
        if isinstance(legal, dict):  # else the settings check says "legal must be an object"
            data["legal"] = {**legal, **{k: v for k, v in legal_flags.items() if v}}
    return data


def _store_check(svc: Services, *, uploaded: bool) -> Callable[[Store], str | None]:
    """Refuses settings under which a step could never be sent (see ``unsendable_step``), with the store's
    uploaded templates when it may have some (``uploaded``), read only when there is a change to check."""

    def check(store: Store) -> str | None:
        overrides = svc.stores.get_templates(store.store_id) if uploaded else {}
        return unsendable_step(store, overrides, svc.clock.now())

    return check


def cmd_store_create(args: argparse.Namespace) -> int:
    try:
        data = {**_settings_from_args(args), "store_id": args.id}
        svc = _services(args)
        store = create_store(
            svc.stores, data, svc.clock, shopify_secret=args.shopify_secret, check=_store_check(svc, uploaded=False)
        )
    except InvalidStore as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AlreadyExists:
        print(f"error: store {args.id!r} already exists", file=sys.stderr)
        return 2
    print(f"store created: {store.store_id}")
    print("These secrets are shown once; keep them in your shop's secret store.")
    print(f"webhook secret (Standard Webhooks): {store.webhook_secrets[0].secret}")
    print(f"shopify secret:                     {store.shopify_secrets[0].secret}")
    if not (store.settings.legal.address and store.settings.legal.contact):
        print(
            "warning: legal address and contact are empty; every marketing email must show them "
            "(特定電子メール法). Set them with --address and --contact.",
            file=sys.stderr,
        )
    return 0


def cmd_store_update(args: argparse.Namespace) -> int:
    try:
        patch = _settings_from_args(args)
        if not patch:
            print("error: nothing to change: give --settings FILE or a setting's flag", file=sys.stderr)
            return 2
        svc = _services(args)
        change = update_store(svc.stores, args.id, patch, check=_store_check(svc, uploaded=True))
    except UnknownStore:
        no_store(args.id)
        return 1
    except InvalidStore as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    changed = change.changed
    if not changed:
        print(f"store {args.id}: no change")
        return 0
    print(f"store {args.id} updated: {', '.join(changed)}")
    if not args.local:
        print(
            f"warm ingest functions use it within {INGEST_STORE_CACHE_SECONDS:g} s and sends within a minute "
            "(STORE_CACHE_SECONDS); pending steps follow the new settings when they fire"
        )
    return 0


def cmd_store_show(args: argparse.Namespace) -> int:
    store = find_store(_services(args), args.id)
    if store is None:
        return 1
    now = datetime.now(UTC)
    shown = {
        **store.settings.to_dict(),
        "webhook_secrets": [
            {"created_at": s.created_at, "expires_at": s.expires_at, "in_force": s.in_force(now)}
            for s in store.webhook_secrets
        ],
        "shopify_secrets": [
            {"created_at": s.created_at, "expires_at": s.expires_at, "in_force": s.in_force(now)}
            for s in store.shopify_secrets
        ],
    }
    print(json.dumps(shown, ensure_ascii=False, indent=2, default=str))
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    svc = _services(args)
    kind = "shopify" if args.shopify else "webhook"
    try:
        fresh = rotate_secret(
            svc.stores, args.id, svc.clock, kind=kind, overlap=timedelta(hours=args.overlap_hours), value=args.value
        )
    except InvalidStore as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.overlap_hours * 3600 < INGEST_STORE_CACHE_SECONDS:
        _wait_out_ingest_cache(args)  # the previous secret ends (about) now
    print(f"new {kind} secret{'' if args.value else ' (shown once)'}: {fresh}")
    print(f"the previous secret stays valid for {args.overlap_hours} h; `store revoke-secret` ends it now")
    return 0


def _overlap_hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {text!r}") from None
    if not 0 <= hours <= MAX_OVERLAP_HOURS:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_OVERLAP_HOURS} hours, got {text!r}")
    return hours


def cmd_revoke(args: argparse.Namespace) -> int:
    svc = _services(args)
    try:
        count = revoke_secrets(svc.stores, args.id, svc.clock, kind="shopify" if args.shopify else "webhook")
    except InvalidStore as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if count:
        _wait_out_ingest_cache(args)
    print(f"revoked {count} secret(s); only the newest is in force")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    svc = _services(args)
    store = find_store(svc, args.store)
    if store is None:
        return 1
    zone = store.settings.zone  # send days are counted in the store's time zone
    if args.local:
        # The same days as GET /_local/report: around the local stack's virtual today, not the wall clock's.
        from cartrecovery.local.local_api import REPORT_DAYS_AHEAD, REPORT_DAYS_BACK

        today = _local_now().astimezone(zone).date()
        day_to = args.to or today + timedelta(days=REPORT_DAYS_AHEAD)
        day_from = args.from_ or today - timedelta(days=REPORT_DAYS_BACK)
    else:
        today = datetime.now(zone).date()
        day_to = args.to or today
        day_from = args.from_ or day_to - timedelta(days=30)
    if day_from > day_to:
        print(f"error: the first day {day_from} is after the last day {day_to}", file=sys.stderr)
        return 2
    report = build_report(svc.ledger, args.store, day_from, day_to)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return 0
    print(f"{report['store']}  {report['from']} .. {report['to']}")
    header = ["flow", "step", "variant", *COLUMNS]
    print("  ".join(f"{h:>12}" for h in header))
    for row in [*report["rows"], {"flow": "total", "step": "", "variant": "", **report["totals"]}]:
        print("  ".join(f"{row[h]!s:>12}" for h in header))
    other = report["totals"]["revenue_other_currencies"]
    if other:  # not in the revenue column, which is the store's currency
        print("revenue of orders in other currencies: " + ", ".join(f"{c} {a}" for c, a in other.items()))
    for flow in report["holdout"]:
        print("\n".join(holdout_summary(flow)))
    for test in report["ab_tests"]:
        print("\n".join(ab_summary(test)))
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a day as YYYY-MM-DD, got {text!r}") from None


def _local_now() -> datetime:
    """The running local stack's virtual time (its report days are virtual days), else the wall clock."""
    base_url = (local_runtime() or {}).get("base_url")
    return parse_rfc3339(business_now(str(base_url))) if base_url else datetime.now(UTC)


def _now(args: argparse.Namespace) -> datetime:
    """Business time: the local stack's virtual clock with --local, else the wall clock."""
    return _local_now() if args.local else datetime.now(UTC)


def cmd_explain(args: argparse.Namespace) -> int:
    cart = _services(args).carts.get(args.store, args.cart)
    if cart is None:
        print(f"no cart {args.cart!r} in store {args.store!r}", file=sys.stderr)
        return 1
    status = cart.status
    if cart.closed_at is not None:
        status += f" at {isoformat(cart.closed_at)}" + (f" (order {cart.order_id})" if cart.order_id else "")
    # To the microsecond, as events order by it: cut to the second, a step due at x.9 s looked early.
    activity = isoformat(cart.last_activity_at, exact=True) if cart.last_activity_at else "none before it closed"
    print(f"cart {cart.cart_id}: {status}; last activity {activity}")
    if cart.timer:
        due = f"{cart.timer.flow} step {cart.timer.step} at {isoformat(cart.timer.due_at)}"
        # A closed cart's timer still fires (its schedule exists), and the firing ends the flow: say so.
        print(f"next: {due}" if cart.is_open else f"next: {due}, which ends the flow without an email")
    for key, record in sorted(cart.steps.items()):
        print(
            f"step {key}: {record.status} at {isoformat(record.at)}"
            + (f" message {record.message_id}" if record.message_id else "")
            + (f" ({record.reason})" if record.reason else "")
        )
    for d in cart.decisions:
        until = f" until {isoformat(d.until)}" if d.until else ""
        print(f"{isoformat(d.at)}  {d.action:<10} {d.flow} step {d.step or '-'}  {d.reason or ''}{until}")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    svc = _services(args)
    store = find_store(svc, args.store)
    if store is None:
        return 1
    erased = erase_shopper(
        store,
        args.email,
        carts=svc.carts,
        events=svc.events,
        ledger=svc.ledger,
        contacts=svc.contacts,
        schedules=svc.schedules,
    )
    print(
        f"erased {erased.carts} cart(s), {erased.events} event(s), {erased.messages} message(s), "
        f"{erased.schedules} pending schedule(s); kept under the salted hash: a suppression or opt-out, the "
        "consent proof until it expires, and each message's report row (for a late complaint or bounce)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cartrecovery", description="Operate a cartrecovery deployment.")
    parser.add_argument("--local", action="store_true", help="talk to the running local stack (make run)")
    parser.add_argument("--stack", help="CloudFormation stack name of a deployment")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")
    commands = parser.add_subparsers(dest="command", required=True)

    store = commands.add_parser("store", help="create and inspect stores, rotate secrets")
    store_commands = store.add_subparsers(dest="store_command", required=True)
    create = store_commands.add_parser("create", help="create a store and print its secrets once")
    create.add_argument("--id", required=True)
    _add_setting_flags(create, required=True)
    create.add_argument("--settings", help="JSON file with further settings (coupon, help links, flows, ...)")
    create.add_argument(
        "--shopify-secret",
        help="the key Shopify signs webhooks with (app client secret, or the "
        "signing key shown under Settings > Notifications > Webhooks); default: generated",
    )
    create.set_defaults(func=cmd_store_create)
    update = store_commands.add_parser(
        "update",
        help="change a store's settings: a JSON merge patch and/or flags",
        description="Change some of a store's settings; the rest stay as they are. --settings FILE is a JSON "
        "merge patch (RFC 7396) of what `store show` prints: an object merges into the one it names, null "
        "puts a setting back to its default, anything else (a list too) replaces it. Flags win over the file. "
        "The result is checked as `store create` checks settings, and every step of the cart-recovery flow "
        "must render with it; otherwise nothing changes.",
    )
    update.add_argument("--id", required=True)
    _add_setting_flags(update, required=False)
    update.add_argument("--settings", help='JSON merge patch of the settings, e.g. {"coupon": null}')
    update.set_defaults(func=cmd_store_update)
    show = store_commands.add_parser("show", help="print a store's settings (never its secrets)")
    show.add_argument("--id", required=True)
    show.set_defaults(func=cmd_store_show)
    rotate = store_commands.add_parser("rotate-secret", help="issue a new secret; the old one expires later")
    rotate.add_argument("--id", required=True)
    rotate.add_argument("--shopify", action="store_true", help="rotate the Shopify secret instead")
    rotate.add_argument(
        "--overlap-hours",
        type=_overlap_hours,
        default=24.0,
        help="how long the current secret keeps working, 0 to 8760 (default 24)",
    )
    rotate.add_argument("--value", help="use this secret instead of generating one (e.g. Shopify's new key)")
    rotate.set_defaults(func=cmd_rotate)
    revoke = store_commands.add_parser("revoke-secret", help="expire every secret but the newest, now")
    revoke.add_argument("--id", required=True)
    revoke.add_argument("--shopify", action="store_true")
    revoke.set_defaults(func=cmd_revoke)

    report = commands.add_parser("report", help="sent, opened, clicked, converted, revenue per step and variant")
    report.add_argument("--store", required=True)
    report.add_argument(
        "--from",
        dest="from_",
        type=_day,
        help="first send day, YYYY-MM-DD (default: 30 days back; --local: as GET /_local/report)",
    )
    report.add_argument(
        "--to", type=_day, help="last send day, YYYY-MM-DD (default: today; --local: as GET /_local/report)"
    )
    report.add_argument("--json", action="store_true")
    report.set_defaults(func=cmd_report)

    explain = commands.add_parser("explain", help="why a cart's emails were (not) sent")
    explain.add_argument("--store", required=True)
    explain.add_argument("--cart", required=True)
    explain.set_defaults(func=cmd_explain)

    erase = commands.add_parser("erase", help="erase one shopper's data from one store")
    erase.add_argument("--store", required=True)
    erase.add_argument("--email", required=True)
    erase.set_defaults(func=cmd_erase)

    add_template_parsers(commands, _services, _now)
    add_catalog_parsers(commands, _services)
    add_coupon_parsers(commands, _services)
    add_consent_parser(commands, _services)
    add_send_event_parser(commands)
    return parser


def _add_setting_flags(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--name", required=required, help="the shop's name, shown in subjects")
    parser.add_argument("--sender-email", required=required, help="From address (a verified SES identity)")
    parser.add_argument("--sender-name")
    parser.add_argument("--url", help="the shop's home page")
    parser.add_argument("--legal-name", help="responsible sender's legal name (特定電子メール法)")
    parser.add_argument("--address", help="sender's postal address")
    parser.add_argument("--contact", help="phone, email or URL for enquiries")
    parser.add_argument("--locale", help="default email language: ja or en")
    parser.add_argument("--timezone", help="default time zone, e.g. Asia/Tokyo")
    parser.add_argument("--quiet-hours", help="e.g. 21:00-08:00 (recipient's local time)")


def _undecodable_argument(args: argparse.Namespace) -> str | None:
    """The first argument holding bytes that were not UTF-8 on the command line (Python keeps each such
    byte as a lone surrogate, which would fail only later, inside an AWS call or a rendering)."""
    for name, value in vars(args).items():
        if isinstance(value, str) and has_unpaired_surrogate(value):
            return name
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        undecodable = _undecodable_argument(args)
        if undecodable is not None:
            parser.error(f"the {undecodable.rstrip('_').replace('_', '-')} argument is not valid UTF-8 text")
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        # No region or credentials, an unknown stack, a stack that is not running: AWS's own words say
        # what to fix; a traceback would only bury them.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``explain ... | head``): stop quietly, as other command-line tools do, and
        # point stdout at nothing so the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

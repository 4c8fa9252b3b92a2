"""``cartrecovery consent show``: the consent proof kept for one address of one store, and its stops.

cartrecovery [--local | --stack NAME] consent show --store shop1 --email taro@example.jp

Reads only that address's items (keyed by its salted hash); the address itself is not printed back.
"""

from __future__ import annotations

import argparse
from typing import Any

from cartrecovery.adapters.contacts import HISTORY_LIMIT, proof_expiry
from cartrecovery.cli.common import ServicesFor, find_store
from cartrecovery.clock import isoformat
from cartrecovery.domain.events import has_control_characters
from cartrecovery.ports import ConsentStatement, ContactRecord
from cartrecovery.usecases.ingest import contact_keys


def _shown(text: str | None) -> str:
    """Text a shop's event supplied, printed so it cannot move the terminal or forge a line: quoted, with
    escapes, when it holds anything unprintable (an escape sequence, a line break)."""
    if not text:
        return "-"
    return repr(text) if has_control_characters(text) else text


def _statement(statement: ConsentStatement) -> str:
    said = "granted  " if statement.granted else "withdrawn"
    return f"{isoformat(statement.at)}  {said}  source {_shown(statement.source)}  event {_shown(statement.event)}"


def _lines(record: ContactRecord | None) -> list[str]:
    if record is None or (record.proof is None and record.opted_out is None and not record.suppressed_reason):
        return ["consent: nothing recorded for this address (no email goes out without a consent signal)"]
    lines = []
    if record.proof is None:
        lines.append("consent: no proof kept")
    else:
        lines.append(f"consent: {_statement(record.proof)}")
        sent = (record.last_message or {}).get("sent_at")
        if sent:
            basis = f"three years after the last email, sent {sent}"
        elif record.proof_expires_at and record.proof_expires_at != proof_expiry(record.history[0].at):
            basis = "three years after the last email, whose record an erasure removed"
        else:
            basis = "three years after the newest statement"
        expires = isoformat(record.proof_expires_at) if record.proof_expires_at else "never"
        lines.append(f"expires: {expires} ({basis})")
        lines.append(f"history (newest first, at most {HISTORY_LIMIT}):")
        lines.extend(f"  {_statement(s)}" for s in record.history)
    suppressed = f"yes ({record.suppressed_reason}), for good" if record.suppressed_reason else "no"
    lines.append(f"suppressed: {suppressed}")
    if record.opted_out is None:
        lines.append("opted out: no")
    else:
        opted = record.opted_out
        lines.append(f"opted out: yes, {isoformat(opted.at)} (source {_shown(opted.source)}), kept for good")
        if record.consent is not None and record.consent.granted:
            lines.append("  a newer consent statement granted consent again since")
    return lines


def cmd_show(args: argparse.Namespace, services: ServicesFor) -> int:
    svc = services(args)
    store = find_store(svc, args.store)
    if store is None:
        return 1
    key = contact_keys(store, args.email, None)[0]
    record = svc.contacts.get_many(store.store_id, [key]).get(key)
    print(f"store {store.store_id}, address {key} (salted hash)")
    for line in _lines(record):
        print(line)
    return 0


def add_consent_parser(commands: Any, services: ServicesFor) -> None:
    """Register ``consent show`` on the CLI's subcommands."""
    consent = commands.add_parser("consent", help="the consent proof and stops kept for one address")
    sub = consent.add_subparsers(dest="consent_command", required=True)
    show = sub.add_parser(
        "show",
        help="print an address's consent proof (granted, time, source, history, expiry) and whether it is "
        "suppressed or opted out",
    )
    show.add_argument("--store", required=True)
    show.add_argument("--email", required=True)
    show.set_defaults(func=lambda args: cmd_show(args, services))

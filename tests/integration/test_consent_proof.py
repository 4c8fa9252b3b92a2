"""Consent is kept as proof for three years after the last email, and stops never expire.

Through the real handlers on moto, with the contacts table built from template.yaml: each email moves the
proof's expiry (the table's TTL attribute) in the write that records it, without an extra call; a
suppression or opt-out carries no expiry and still stops the flow once the proof is gone; a withdrawal stops
the next step at once; ``cartrecovery consent show`` prints one address's proof and stops, and nobody else's.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from test_handlers import (  # the handler tests' stack and the store's side of it
    SHOPPER,
    Stack,
    contact,
    env,
    post_event,
    scheduler_input,
    send_step_one,
    ses_record,
    sqs_ses_event,
)

from cartrecovery.adapters.contacts import HISTORY_LIMIT, DynamoContactBook
from cartrecovery.cli import main as cli_main
from cartrecovery.clock import isoformat
from cartrecovery.domain.events import Consent
from cartrecovery.identity import email_hash
from cartrecovery.ports import ConsentStatement
from cartrecovery.wiring import Services

if TYPE_CHECKING:
    from conftest import Deployment

__all__ = ["env"]  # a fixture, used by name

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


def item(env: Stack, key: str) -> dict[str, Any] | None:
    """The contacts table's item as stored: ``e#`` (stops) or ``p#`` (proof) for the shopper's address."""
    response = env.svc.dynamodb.get_item(
        TableName=env.svc.settings.contacts_table,
        Key={"store_id": {"S": "tea-shop"}, "contact_key": {"S": key + email_hash(env.store.salt, SHOPPER)}},
        ConsistentRead=True,
    )
    found: dict[str, Any] | None = response.get("Item")
    return found


def expires_at(env: Stack) -> datetime:
    proof = item(env, "p#")
    assert proof is not None
    return datetime.fromtimestamp(int(proof["expires_at"]["N"]), UTC)


def contacts_calls(env: Stack) -> Counter[str]:
    """Counts every call the functions make on the contacts table from now on, by operation."""
    calls: Counter[str] = Counter()
    table = env.svc.settings.contacts_table

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        if params.get("TableName") == table or table in params.get("RequestItems", {}):
            calls[model.name] += 1

    env.svc.dynamodb.meta.events.register("provide-client-params.dynamodb", count)
    return calls


def fire_next_step(env: Stack) -> dict[str, Any]:
    cart = env.svc.carts.get("tea-shop", "c-1")
    assert cart is not None and cart.timer is not None
    env.clock.set(cart.timer.due_at)
    payload = scheduler_input(env.svc, cart.timer.schedule_name, env.deployment.schedule_group)
    result: dict[str, Any] = env.handlers.invoke("send", payload)
    return result


def shopper_event(env: Stack, kind: str, **customer: Any) -> dict[str, Any]:
    return {"type": kind, "occurred_at": isoformat(env.clock.now()), "customer": {"email": SHOPPER, **customer}}


def test_the_proof_expires_three_years_after_the_last_email_and_each_send_moves_it(env: Stack) -> None:
    ttl = env.svc.dynamodb.describe_time_to_live(TableName=env.svc.settings.contacts_table)
    assert (ttl["TimeToLiveDescription"]["TimeToLiveStatus"], ttl["TimeToLiveDescription"]["AttributeName"]) == (
        "ENABLED",
        "expires_at",
    )
    abandoned_at = env.clock.now()
    calls = contacts_calls(env)

    send_step_one(env)
    sent_calls = +calls  # before this test's own reads below

    first_sent = env.clock.now()
    assert expires_at(env) == first_sent.astimezone(UTC).replace(year=first_sent.year + 3)
    record = contact(env)
    assert record is not None
    checkout = ConsentStatement(True, abandoned_at, "checkout-form", "cart:c-1")  # the consent it was sent on
    assert record.history == (checkout,) and record.proof == checkout
    # The proof rode on the write that records the email: the send's calls are the two reads of the
    # address (before and after the claim) and that one write, as before there was any proof.
    assert sent_calls == {"BatchGetItem": 2, "UpdateItem": 1}

    calls.clear()
    result = fire_next_step(env)
    sent_calls = +calls

    assert result["action"] == "sent", result
    second_sent = env.clock.now()
    assert second_sent > first_sent
    assert expires_at(env) == second_sent.astimezone(UTC).replace(year=second_sent.year + 3)
    record = contact(env)
    assert record is not None and record.history == (checkout,)  # the same statement is not added twice
    assert sent_calls == {"BatchGetItem": 2, "UpdateItem": 1}
    stops = item(env, "e#")
    assert stops is None or "expires_at" not in stops


@pytest.mark.parametrize("stop", ["hard_bounce", "complaint", "customer.unsubscribed"])
def test_a_stop_carries_no_expiry_and_still_stops_the_flow_once_the_proof_has_expired(env: Stack, stop: str) -> None:
    message_id, _ = send_step_one(env)
    if stop == "customer.unsubscribed":
        assert post_event(env, shopper_event(env, stop)).status == 202
        reason = "unsubscribed"
    else:
        at = isoformat(env.clock.now() + timedelta(minutes=5)).replace("+00:00", ".000Z")
        record = (
            ses_record("Bounce", message_id, at, bounceType="Permanent")
            if stop == "hard_bounce"
            else ses_record("Complaint", message_id, at)
        )
        assert env.handlers.invoke("tracking", sqs_ses_event(record)) == {"batchItemFailures": []}
        reason = "suppressed"

    stops = item(env, "e#")
    assert stops is not None and ("suppressed" in stops or "opted_out" in stops)
    assert "expires_at" not in stops, "a stop must never expire"
    # What TTL does three years after the last email: the proof item goes, the stop item stays.
    env.svc.dynamodb.delete_item(
        TableName=env.svc.settings.contacts_table,
        Key={"store_id": {"S": "tea-shop"}, "contact_key": {"S": "p#" + email_hash(env.store.salt, SHOPPER)}},
    )

    result = fire_next_step(env)

    assert (result["action"], result["reason"]) == ("skipped", reason)
    assert len(env.outbox()) == 1


def test_a_withdrawn_consent_stops_the_next_step_at_once_and_joins_the_proof(env: Stack) -> None:
    send_step_one(env)
    withdrawn_at = env.clock.now() + timedelta(minutes=30)
    env.clock.set(withdrawn_at)
    withdrawal = shopper_event(
        env, "customer.consent_changed", marketing_consent={"granted": False, "source": "account-settings"}
    )

    assert post_event(env, withdrawal, event_id="evt_withdrawal").status == 202
    result = fire_next_step(env)

    assert (result["action"], result["reason"]) == ("skipped", "no_consent")
    assert len(env.outbox()) == 1
    record = contact(env)
    assert record is not None
    statement = ConsentStatement(False, withdrawn_at, "account-settings", "evt_withdrawal")
    assert record.history[0] == statement and record.history[1].event == "cart:c-1"
    assert record.opted_out == statement  # also kept as a stop, which does not expire
    stops = item(env, "e#")
    assert stops is not None and "expires_at" not in stops


def test_a_statement_dated_ahead_of_its_arrival_is_kept_as_made_when_it_arrived(env: Stack) -> None:
    # The sender's clock runs 20 h fast: dated as sent, this opt-in would outrank every unsubscribe made
    # through the email's link in the next 20 h (those are dated by the receiver's clock).
    send_step_one(env)
    arrived = env.clock.now()
    ahead = {"granted": True, "at": isoformat(arrived + timedelta(hours=20)), "source": "newsletter-form"}

    assert post_event(env, shopper_event(env, "customer.consent_changed", marketing_consent=ahead)).status == 202

    record = contact(env)
    assert record is not None and record.history[0].at == arrived
    assert record.consent is not None and record.consent.at == arrived


def test_the_history_is_bounded_newest_first_and_expires_after_the_newest_statement_without_email(
    svc: Services, deployment: Deployment
) -> None:
    contacts: DynamoContactBook = svc.contacts
    key = "e#" + "a" * 40
    t0 = deployment.start
    times = [t0 + timedelta(days=d) for d in range(HISTORY_LIMIT + 5)]
    for n, at in enumerate(reversed(times)):  # delivered newest first: the order must not matter
        contacts.record_consent("tea-shop", key, Consent(n % 2 == 0, at, "account-settings"), event=f"evt_{n}")
    contacts.record_consent("tea-shop", key, Consent(True, times[-1], "account-settings"), event="evt_0_again")

    record = contacts.get_many("tea-shop", [key])[key]

    assert [s.at for s in record.history] == list(reversed(times))[:HISTORY_LIMIT]
    assert record.proof == record.history[0] == ConsentStatement(True, times[-1], "account-settings", "evt_0")
    assert record.proof_expires_at == times[-1].astimezone(UTC).replace(year=times[-1].year + 3)


def test_a_statement_sent_on_while_the_proof_changed_is_still_kept(svc: Services, deployment: Deployment) -> None:
    contacts: DynamoContactBook = svc.contacts
    key = "e#" + "a" * 40
    t0 = deployment.start
    seen = contacts.get_many("tea-shop", [key]).get(key)  # nothing yet
    contacts.record_consent("tea-shop", key, Consent(True, t0, "newsletter-form"), event="evt_1")  # meanwhile
    checkout = ConsentStatement(True, t0 + timedelta(hours=1), "checkout-form", "cart:c-1")
    sent_at = t0 + timedelta(hours=3)

    contacts.note_sent("tea-shop", key, {"message_id": "m-1", "sent_at": isoformat(sent_at)}, checkout, seen)

    record = contacts.get_many("tea-shop", [key])[key]
    assert record.history == (checkout, ConsentStatement(True, t0, "newsletter-form", "evt_1"))
    assert record.last_message == {"message_id": "m-1", "sent_at": isoformat(sent_at)}
    assert record.proof_expires_at == sent_at.astimezone(UTC).replace(year=sent_at.year + 3)


def test_consent_show_prints_one_addresss_proof_and_stops_and_nobody_elses(
    env: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_main, "_services", lambda args: Services(env.svc.settings, env.svc.clock, env.svc._session))
    abandoned_at = env.clock.now()
    send_step_one(env)
    sent_at = env.clock.now()
    other = shopper_event(env, "customer.consent_changed", marketing_consent={"granted": True, "source": "kiosk"})
    other["customer"]["email"] = "hanako@example.jp"
    assert post_event(env, other, event_id="evt_hanako").status == 202
    assert post_event(env, shopper_event(env, "customer.unsubscribed"), event_id="evt_unsub").status == 202
    capsys.readouterr()  # the functions' metric lines

    code = cli_main.main(["consent", "show", "--store", "tea-shop", "--email", SHOPPER.upper()])

    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"store tea-shop, address e#{email_hash(env.store.salt, SHOPPER)} (salted hash)"
    withdrawn = f"{isoformat(sent_at)}  withdrawn  source store  event evt_unsub"
    granted = f"{isoformat(abandoned_at)}  granted    source checkout-form  event cart:c-1"
    expiry = isoformat(sent_at.astimezone(UTC).replace(year=sent_at.year + 3))
    assert lines[1:] == [
        f"consent: {withdrawn}",
        f"expires: {expiry} (three years after the last email, sent {isoformat(sent_at)})",
        f"history (newest first, at most {HISTORY_LIMIT}):",
        f"  {withdrawn}",
        f"  {granted}",
        "suppressed: no",
        f"opted out: yes, {isoformat(sent_at)} (source store), kept for good",
    ]
    assert SHOPPER not in out and "hanako" not in out and "kiosk" not in out and "evt_hanako" not in out

    assert cli_main.main(["consent", "show", "--store", "tea-shop", "--email", "nobody@example.jp"]) == 0
    assert "nothing recorded" in capsys.readouterr().out
    assert cli_main.main(["consent", "show", "--store", "no-such-shop", "--email", SHOPPER]) == 1
    assert "no store" in capsys.readouterr().err


def test_consent_show_after_an_erasure_still_says_the_expiry_counts_from_the_last_email(
    env: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The erasure forgets the last email but keeps the proof with the expiry that email set (two hours
    # after the consent statement): the basis must not say "the newest statement".
    monkeypatch.setattr(cli_main, "_services", lambda args: Services(env.svc.settings, env.svc.clock, env.svc._session))
    send_step_one(env)
    sent_at = env.clock.now()
    assert cli_main.main(["erase", "--store", "tea-shop", "--email", SHOPPER]) == 0
    capsys.readouterr()

    assert cli_main.main(["consent", "show", "--store", "tea-shop", "--email", SHOPPER]) == 0
    expiry = isoformat(sent_at.astimezone(UTC).replace(year=sent_at.year + 3))
    expected = f"expires: {expiry} (three years after the last email, whose record an erasure removed)"
    assert expected in capsys.readouterr().out.splitlines()


def test_consent_show_prints_a_source_with_control_characters_escaped(
    env: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The source is the shop's text: an escape sequence must not clear the operator's screen, and a line
    # break must not forge a "suppressed: no" line.
    monkeypatch.setattr(cli_main, "_services", lambda args: Services(env.svc.settings, env.svc.clock, env.svc._session))
    forged = "form\x1b[2J\nsuppressed: no"
    event = shopper_event(env, "customer.consent_changed", marketing_consent={"granted": True, "source": forged})
    assert post_event(env, event, event_id="evt_forged").status == 202
    capsys.readouterr()

    assert cli_main.main(["consent", "show", "--store", "tea-shop", "--email", SHOPPER]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out  # the escape character itself; its escaped form is shown
    assert [line for line in out.splitlines() if line.startswith("suppressed:")] == ["suppressed: no"]
    assert f"source {forged!r}" in out


def test_each_function_may_make_exactly_the_contacts_calls_its_part_of_the_proof_needs(
    template: dict[str, Any],
) -> None:
    """moto does not enforce IAM, so the grants are read from template.yaml: adding a statement to the proof
    reads it first (ingest for consent changes and opt-outs, the unsubscribe link), the send reads both items
    in its one BatchGetItem, tracking only writes a suppression; no function may delete a stop."""
    contacts = {"Fn::GetAtt": ["ContactsTable", "Arn"]}
    wanted = {
        "IngestFunction": {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
        "SendFunction": {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"},
        "TrackingFunction": {"dynamodb:UpdateItem"},
        "UnsubscribeFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "SweepFunction": set(),
    }
    for name, expected in wanted.items():
        statements = template["Resources"][name]["Properties"].get("Policies", [])
        granted = {
            action
            for policy in statements
            for statement in policy.get("Statement", [])
            if contacts in _as_list(statement["Resource"])
            for action in _as_list(statement["Action"])
        }
        assert granted == expected, name


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_keys_dynamodb_leaves_unprocessed_are_read_again_so_a_stop_is_never_missed(
    svc: Services, deployment: Deployment
) -> None:
    contacts: DynamoContactBook = svc.contacts
    key = "e#" + "a" * 40
    contacts.suppress("tea-shop", key, "complained", deployment.start)
    throttled: list[int] = []

    def leave_all_unprocessed_once(parsed: dict[str, Any], **_: Any) -> None:
        if not throttled:  # under load BatchGetItem may answer a part, or nothing, and name the rest
            throttled.append(1)
            table = svc.settings.contacts_table
            asked = [{"store_id": {"S": "tea-shop"}, "contact_key": {"S": k}} for k in (key, "p#" + "a" * 40)]
            parsed["Responses"] = {table: []}
            parsed["UnprocessedKeys"] = {table: {"Keys": asked, "ConsistentRead": True}}

    svc.dynamodb.meta.events.register("after-call.dynamodb.BatchGetItem", leave_all_unprocessed_once)

    record = contacts.get_many("tea-shop", [key])[key]

    assert throttled and record.suppressed_reason == "complained"

"""Standard Webhooks signatures (published vector, ±300 s, rotation) and unsubscribe tokens (scoped, tamper-proof,
no readable address)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from cartrecovery.identity import email_hash
from cartrecovery.signing import SignatureRejected, new_secret, sign, sign_shopify, verify, verify_shopify
from cartrecovery.tokens import InvalidToken, UnsubscribeToken, issue, peek_store
from cartrecovery.tokens import verify as verify_token
from cartrecovery.usecases.stores import new_store, rotate_secret
from cartrecovery.usecases.unsubscribe import Unsubscribe
from tests.fakes import World, store_settings

# The published Standard Webhooks test vector.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def check(
    signature: str = SIGNATURE,
    *,
    secrets: list[str] | None = None,
    body: bytes = BODY,
    now: float = TIMESTAMP,
    msg_id: str | None = MSG_ID,
    timestamp: str | None = str(TIMESTAMP),
) -> None:
    verify(secrets if secrets is not None else [SECRET], msg_id, timestamp, signature, body, now)


def test_the_published_vector_signs_and_verifies() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    check()


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_timestamps_within_five_minutes_either_way_are_accepted(skew: int) -> None:
    check(now=TIMESTAMP + skew)


@pytest.mark.parametrize("skew", [-301, 301, 86400, -86400])
def test_timestamps_further_off_are_rejected_old_or_future(skew: int) -> None:
    with pytest.raises(SignatureRejected):
        check(now=TIMESTAMP + skew)


def test_any_change_to_the_signed_bytes_is_rejected() -> None:
    for changed in ({"body": b'{"test":2432232314}'}, {"msg_id": "msg_other"}, {"timestamp": str(TIMESTAMP + 1)}):
        with pytest.raises(SignatureRejected):
            check(**changed, now=TIMESTAMP)


def test_japanese_text_is_verified_over_the_exact_bytes_received() -> None:
    secret = new_secret()
    raw = '{"customer": {"name": "山田 太郎"}}'.encode()
    signature = sign(secret, "m-1", TIMESTAMP, raw)
    check(signature, secrets=[secret], body=raw, msg_id="m-1")
    reserialised = json.dumps(json.loads(raw)).encode()  # \u escapes: same JSON, other bytes
    with pytest.raises(SignatureRejected):
        check(signature, secrets=[secret], body=reserialised, msg_id="m-1")


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "signature"),
    [
        (None, str(TIMESTAMP), SIGNATURE),
        (MSG_ID, None, SIGNATURE),
        (MSG_ID, str(TIMESTAMP), None),
        (MSG_ID, "", SIGNATURE),
        (MSG_ID, "1614265330.5", SIGNATURE),
        (MSG_ID, "-1614265330", SIGNATURE),
        (MSG_ID, str(TIMESTAMP), "v1,not base64!!"),
        (MSG_ID, str(TIMESTAMP), "v2," + SIGNATURE[3:]),
        (MSG_ID, str(TIMESTAMP), "v1,"),
        (MSG_ID, str(TIMESTAMP), "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
        ("x" * 1000, str(TIMESTAMP), SIGNATURE),
    ],
)
def test_every_malformed_header_is_the_one_rejection(
    msg_id: str | None, timestamp: str | None, signature: str | None
) -> None:
    with pytest.raises(SignatureRejected):
        verify([SECRET], msg_id, timestamp, signature, BODY, TIMESTAMP)


def test_a_secret_that_is_not_base64_rejects_instead_of_crashing() -> None:
    with pytest.raises(SignatureRejected):
        check(secrets=["whsec_%%%not-base64%%%"])


def test_any_listed_signature_may_match_any_secret_in_force() -> None:
    other = new_secret()
    # The sender signs with both keys during a rotation; either one listed is enough.
    both = f"{sign(other, MSG_ID, TIMESTAMP, BODY)} {SIGNATURE}"
    check(both, secrets=[SECRET])
    check(both, secrets=[other])
    check(SIGNATURE, secrets=[other, SECRET])
    with pytest.raises(SignatureRejected):
        check(SIGNATURE, secrets=[other])
    with pytest.raises(SignatureRejected):
        check(SIGNATURE, secrets=[])


def test_after_a_rotation_both_secrets_work_until_the_old_one_expires() -> None:
    world = World.create(datetime(2026, 12, 1, tzinfo=UTC))
    old = world.store.webhook_secrets[0].secret
    new = rotate_secret(world.stores, world.store_id, world.clock, overlap=timedelta(hours=24))

    def accepted(secret: str) -> bool:
        store = world.stores.get(world.store_id)
        assert store is not None
        now = world.clock.now()
        ts = int(now.timestamp())
        try:
            verify(store.webhook_secrets_in_force(now), "m-1", str(ts), sign(secret, "m-1", ts, BODY), BODY, ts)
        except SignatureRejected:
            return False
        return True

    assert accepted(old) and accepted(new)
    world.clock.advance(24 * 3600 + 1)
    assert not accepted(old)
    assert accepted(new)


def test_shopify_hmac_over_the_raw_body() -> None:
    raw = '{"token": "abc", "email": "taro@example.jp", "note": "抹茶"}'.encode()
    header = sign_shopify("shpss_app_secret", raw)
    verify_shopify(["shpss_old", "shpss_app_secret"], header, raw)
    for bad_header, bad_body in ((header, raw + b" "), (None, raw), ("", raw), ("ñ", raw)):
        with pytest.raises(SignatureRejected):
            verify_shopify(["shpss_app_secret"], bad_header, bad_body)


# --- unsubscribe tokens --------------------------------------------------------------------------------------


def token_for(store_id: str, email: str, salt: str = "salt-1") -> UnsubscribeToken:
    return UnsubscribeToken(store_id, email_hash(salt, email), "cart_recovery", 2, "a", "2026-12-01")


def test_a_token_round_trips() -> None:
    token = token_for("shop-1", "taro@example.jp")
    text = issue(token, "key-1")
    assert peek_store(text) == "shop-1"
    assert verify_token(text, "key-1") == token
    assert len(text) < 300  # fits comfortably in a header and a link


def test_a_token_shows_no_address() -> None:
    text = issue(token_for("shop-1", "taro.yamada@example.jp"), "key-1")
    payload = base64.urlsafe_b64decode(text.split(".")[0] + "==").decode()
    for readable in (text, payload):
        assert "taro" not in readable.lower() and "example.jp" not in readable
        assert "@" not in readable


def test_a_token_is_scoped_to_its_store_and_key() -> None:
    text = issue(token_for("shop-1", "taro@example.jp"), "key-shop-1")
    with pytest.raises(InvalidToken):
        verify_token(text, "key-shop-2")


@pytest.mark.parametrize("where", ["payload", "mac"])
def test_a_tampered_token_fails(where: str) -> None:
    text = issue(token_for("shop-1", "taro@example.jp"), "key-1")
    payload, mac = text.split(".")
    index = 5 if where == "payload" else 3
    part = payload if where == "payload" else mac
    flipped = part[:index] + ("A" if part[index] != "A" else "B") + part[index + 1 :]
    tampered = f"{flipped}.{mac}" if where == "payload" else f"{payload}.{flipped}"
    with pytest.raises(InvalidToken):
        verify_token(tampered, "key-1")


def test_a_token_for_another_address_cannot_be_forged_from_a_real_one() -> None:
    real = issue(token_for("shop-1", "taro@example.jp"), "key-1")
    forged_payload = issue(token_for("shop-1", "hanako@example.jp"), "wrong-key").split(".")[0]
    with pytest.raises(InvalidToken):
        verify_token(f"{forged_payload}.{real.split('.')[1]}", "key-1")


@pytest.mark.parametrize("text", ["", "abc", "a.b.c", "e30.AAAA", "!!!.@@@", "x" * 700 + ".y", "eyJzIjoiLi4vIn0.AAAA"])
def test_garbage_is_an_invalid_token_never_a_crash(text: str) -> None:
    with pytest.raises(InvalidToken):
        peek_store(text)
        verify_token(text, "key-1")


@pytest.mark.parametrize("mac", ["é" * 22, "\ufffd\ufffd", "AAAAAAAAAAAAAAAAAAAAA\u3000"])
def test_a_real_payload_with_a_mac_that_is_not_ascii_is_an_invalid_token(mac: str) -> None:
    # A link whose end was mangled into other characters (%C3%A9, or %FF decoded as U+FFFD) once made the
    # comparison raise TypeError, and the page answered 503 instead of 404.
    payload = issue(token_for("shop-1", "taro@example.jp"), "key-1").split(".")[0]
    with pytest.raises(InvalidToken):
        verify_token(f"{payload}.{mac}", "key-1")


def test_unsubscribing_stops_only_that_address_at_that_store() -> None:
    world = World.create(datetime(2026, 12, 1, tzinfo=UTC))
    other_store = new_store(store_settings("shop-2"), world.clock.now())
    world.stores.create(other_store)
    unsubscribe = Unsubscribe(world.stores, world.contacts, world.ledger, world.clock)
    taro, hanako = "taro@example.jp", "hanako@example.jp"
    text = issue(token_for(world.store_id, taro, world.store.salt), world.store.token_key)

    subject = unsubscribe(text)
    unsubscribe(text)  # a second click changes nothing more

    assert subject.store_name == "Matcha Shop"
    contacts = world.contacts
    record = contacts.get_many(world.store_id, [world.email_key(taro)])[world.email_key(taro)]
    assert record.unsubscribed_at == world.clock.now()
    assert record.consent is not None and record.consent.granted is False
    assert contacts.get_many(world.store_id, [world.email_key(hanako)]) == {}
    taro_at_shop_2 = "e#" + email_hash(other_store.salt, taro)
    assert contacts.get_many("shop-2", [taro_at_shop_2]) == {}
    (row,) = world.ledger.report_rows(world.store_id, "2026-12-01", "2026-12-01")
    assert row["unsubscribed"] == 1 and row["step"] == 2

    # The other store's key does not accept this store's token.
    with pytest.raises(InvalidToken):
        verify_token(text, other_store.token_key)

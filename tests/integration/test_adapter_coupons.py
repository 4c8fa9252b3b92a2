"""Single-use coupon codes in DynamoDB: a code goes to at most one cart step even when many sends take codes
at the same moment, the same step always gets the same code, an upload never adds a code twice, and the
operator commands upload and count them without ever showing who got which code."""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.core.botocore_stubber import BotocoreStubber

from cartrecovery.adapters.coupons import DynamoCouponPool
from cartrecovery.cli import main as cli_main
from cartrecovery.clock import isoformat
from cartrecovery.domain.events import parse_event
from cartrecovery.ports import PoolBusy, PoolStats
from cartrecovery.usecases.stores import create_store
from cartrecovery.wiring import Services

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

STORE = "tea-shop"
CODES = [f"TEA-{n:03d}" for n in range(1, 11)]


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies each request atomically; moto's in-process backend takes no lock, so two threads could
    both pass one condition inside moto. Serialise its request handling (as tests/guarantees does for the
    concurrent sends) so the emulator behaves like the service; the requests still interleave freely."""
    lock = threading.Lock()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


@pytest.fixture
def pool(svc: Services) -> DynamoCouponPool:
    return DynamoCouponPool(svc.dynamodb, svc.settings.coupons_table)


def test_codes_are_handed_out_in_upload_order_once_each_then_none(pool: DynamoCouponPool, svc: Services) -> None:
    now = svc.clock.now()
    pool.add_codes(STORE, CODES[:2], now)

    first = pool.hand_out(STORE, "c-1#cart_recovery#2", now)
    again = pool.hand_out(STORE, "c-1#cart_recovery#2", now)  # a retried firing of the same step
    second = pool.hand_out(STORE, "c-2#cart_recovery#2", now)
    none_left = pool.hand_out(STORE, "c-3#cart_recovery#2", now)

    assert (first, again, second, none_left) == ("TEA-001", "TEA-001", "TEA-002", None)
    assert pool.stats(STORE) == PoolStats(total=2, handed_out=2)
    assert pool.hand_out("other-shop", "c-1#cart_recovery#2", now) is None  # pools are per store
    pool.add_codes(STORE, CODES[2:3], now)  # a later upload refills it
    assert pool.hand_out(STORE, "c-3#cart_recovery#2", now) == "TEA-003"
    assert pool.existing_codes(STORE) == set(CODES[:3])


def hand_out_at_once(svc: Services, table: str, holders: list[str]) -> list[tuple[str, str | None]]:
    """Each holder's hand-out from a send container of its own (own client), all released at the same moment."""
    now = svc.clock.now()
    containers = [DynamoCouponPool(Services(svc.settings, svc.clock, svc._session).dynamodb, table) for _ in holders]
    barrier = threading.Barrier(len(holders))

    def send(index: int) -> tuple[str, str | None]:
        barrier.wait()
        return holders[index], containers[index].hand_out(STORE, holders[index], now)

    with ThreadPoolExecutor(len(holders)) as threads:
        return list(threads.map(send, range(len(holders))))


@pytest.mark.usefixtures("atomic_requests")
def test_simultaneous_sends_never_get_the_same_code_and_a_doubled_firing_gets_one(
    pool: DynamoCouponPool, svc: Services
) -> None:
    codes = [f"TEA-{n:03d}" for n in range(1, 25)]
    pool.add_codes(STORE, codes, svc.clock.now())
    # Twenty sends at once: sixteen carts' coupon steps, four of them delivered twice.
    holders = [f"c-{n}#cart_recovery#2" for n in range(16)] + [f"c-{n}#cart_recovery#2" for n in range(4)]

    results = hand_out_at_once(svc, pool.table, holders)

    by_holder: dict[str, set[str | None]] = {}
    for holder, code in results:
        by_holder.setdefault(holder, set()).add(code)
    assert all(len(got) == 1 for got in by_holder.values()), by_holder  # both deliveries of a step: one code
    given = [got.pop() for got in by_holder.values()]
    assert None not in given and len(set(given)) == 16 and set(given) <= set(codes)  # no code went twice
    # A number taken by the losing delivery of a doubled step is never handed to anyone later either.
    later = [pool.hand_out(STORE, f"later-{n}", svc.clock.now()) for n in range(8)]
    assert not set(later) & set(given) and len({c for c in later if c}) == len([c for c in later if c])
    assert pool.stats(STORE).left == 0


@pytest.mark.usefixtures("atomic_requests")
def test_when_more_sends_than_codes_race_each_code_goes_to_exactly_one_cart(
    pool: DynamoCouponPool, svc: Services
) -> None:
    pool.add_codes(STORE, CODES, svc.clock.now())

    results = hand_out_at_once(svc, pool.table, [f"c-{n}#cart_recovery#2" for n in range(20)])

    handed = Counter(code for _, code in results)
    assert handed[None] == 10
    del handed[None]
    assert sorted(handed) == CODES and set(handed.values()) == {1}
    assert pool.stats(STORE) == PoolStats(total=10, handed_out=10)


def test_an_upload_during_another_is_refused_and_an_interrupted_one_leaves_no_usable_codes(
    pool: DynamoCouponPool, svc: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = svc.clock.now()
    pool.add_codes(STORE, CODES[:1], now)

    def throttled(**_: Any) -> Any:
        raise RuntimeError("throttled")

    with monkeypatch.context() as patch:
        patch.setattr(pool.client, "batch_write_item", throttled)
        with pytest.raises(RuntimeError):
            pool.add_codes(STORE, CODES[1:4], now)
    assert pool.stats(STORE) == PoolStats(1, 0) and pool.existing_codes(STORE) == {"TEA-001"}

    pool.add_codes(STORE, CODES[4:5], now)  # the failed upload released its lock
    assert [pool.hand_out(STORE, f"c-{n}", now) for n in range(3)] == ["TEA-001", "TEA-005", None]

    pool.client.update_item(
        TableName=pool.table,
        Key={"store_id": {"S": STORE}, "coupon_key": {"S": "pool"}},
        UpdateExpression="SET #lock = :t, lock_until = :u",
        ExpressionAttributeNames={"#lock": "lock"},
        ExpressionAttributeValues={":t": {"S": "someone-else"}, ":u": {"S": "2999-01-01T00:00:00Z"}},
    )
    with pytest.raises(PoolBusy):
        pool.add_codes(STORE, CODES[5:6], now)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_services(svc: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_main, "_services", lambda args: Services(svc.settings, svc.clock, svc._session))


@pytest.mark.usefixtures("cli_services")
def test_the_operator_uploads_a_csv_and_sees_the_counts_but_never_who_got_which_code(
    svc: Services, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "store.json"
    settings.write_text(
        json.dumps(
            {
                "legal": {"address": "京都府京都市下京区 1-2-3", "contact": "support@shop.example.jp"},
                "coupon": {
                    "kind": "pool",
                    "description": "10%オフ",
                    "apply_url": "https://shop.example.jp/discount/{code}?redirect=/cart",
                    "only_if_not_clicked": True,
                },
            }
        )
    )
    code, _, err = cli(
        capsys,
        "store",
        "create",
        "--id",
        STORE,
        "--name",
        "抹茶堂",
        "--sender-email",
        "s@example.jp",
        "--settings",
        str(settings),
    )
    assert code == 0, err
    code, shown, _ = cli(capsys, "store", "show", "--id", STORE)
    assert json.loads(shown)["coupon"] == {
        "code": "",
        "description": "10%オフ",
        "terms": "",
        "valid_days": None,
        "kind": "pool",
        "apply_url": "https://shop.example.jp/discount/{code}?redirect=/cart",
        "only_if_not_clicked": True,
    }
    first = tmp_path / "codes.csv"
    first.write_text("code,discount\nTEA-001,10%\n\nTEA-002,10%\nTEA-001,10%\n", encoding="utf-8")
    code, out, err = cli(capsys, "coupons", "upload", "--store", STORE, str(first))
    assert code == 0, err
    assert "skipped the header line 'code'" in out
    assert "skipped 1 repeated line(s), each code added once: TEA-001" in out
    assert "added 2 code(s) to store tea-shop's pool; 2 of 2 left" in out

    second = tmp_path / "more.txt"
    second.write_text("TEA-002\nTEA-003\n", encoding="utf-8")
    code, out, _ = cli(capsys, "coupons", "upload", "--store", STORE, str(second))
    assert "skipped 1 code(s) already in the pool: TEA-002" in out and "added 1 code(s)" in out

    svc.coupons.hand_out(STORE, "c-1#cart_recovery#2", svc.clock.now())
    code, out, err = cli(capsys, "coupons", "show", "--store", STORE)
    assert code == 0
    assert out.strip() == "store tea-shop: 3 code(s) uploaded, 1 handed out, 2 left"
    assert "TEA-" not in out + err and "c-1" not in out + err

    bad = tmp_path / "bad.txt"
    bad.write_text("TEA-004\nTEA 005\n", encoding="utf-8")
    code, _, err = cli(capsys, "coupons", "upload", "--store", STORE, str(bad))
    assert code == 1 and "line 2: 'TEA 005' contains spaces" in err and "nothing was added" in err
    assert svc.coupons.stats(STORE).total == 3
    code, _, err = cli(capsys, "coupons", "show", "--store", "no-such-shop")
    assert code == 1 and "no store 'no-such-shop'" in err


@pytest.mark.usefixtures("cli_services")
def test_a_store_with_a_plain_http_apply_link_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "store.json"
    settings.write_text(json.dumps({"coupon": {"code": "X", "description": "d", "apply_url": "http://s.jp/{code}"}}))

    code, _, err = cli(
        capsys,
        "store",
        "create",
        "--id",
        STORE,
        "--name",
        "抹茶堂",
        "--sender-email",
        "s@example.jp",
        "--settings",
        str(settings),
    )

    assert code == 2 and "apply_url must be an absolute https URL" in err


def test_the_send_function_counts_an_empty_pool_and_falls_back_to_the_store_wide_code(
    svc: Services, handlers: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = {
        "store_id": STORE,
        "name": "抹茶堂",
        "sender_email": "shop@tea-shop.example.jp",
        "legal": {"address": "京都府京都市下京区 1-2-3", "contact": "support@shop.example.jp"},
        "coupon": {"kind": "pool", "code": "THANKS5", "description": "5%オフ"},
    }
    store = create_store(svc.stores, settings, svc.clock)
    svc.coupons.add_codes(STORE, ["TEA-001"], svc.clock.now())
    at = isoformat(svc.clock.now())
    for n in (1, 2):
        body = {
            "type": "cart.updated",
            "occurred_at": at,
            "customer": {
                "email": f"shopper{n}@example.jp",
                "locale": "ja",
                "marketing_consent": {"granted": True, "at": at, "source": "checkout-form"},
            },
            "cart": {
                "id": f"c-{n}",
                "currency": "JPY",
                "items": [
                    {"sku": "T", "name": "抹茶", "url": "https://shop.example.jp/t", "unit_price": 980, "quantity": 1}
                ],
            },
        }
        svc.ingest(store, f"evt-{n}", parse_event(body), fingerprint=json.dumps(body))
    start = svc.clock.now()
    outcomes: dict[tuple[str, int], dict[str, Any]] = {}
    for step, after in ((1, timedelta(hours=2)), (2, timedelta(days=3))):
        svc.clock.set(start + after)
        for cart_id in ("c-1", "c-2"):
            payload = {"store_id": STORE, "cart_id": cart_id, "flow": "cart_recovery", "step": step}
            capsys.readouterr()
            outcomes[(cart_id, step)] = {"result": handlers.invoke("send", payload), "out": capsys.readouterr().out}

    assert all(o["result"]["action"] == "sent" for o in outcomes.values()), outcomes
    first, second = outcomes[("c-1", 2)], outcomes[("c-2", 2)]
    assert "CouponPoolEmpty" not in first["out"] and "CouponPoolEmpty" in second["out"]
    assert all("CouponPoolEmpty" not in outcomes[(c, 1)]["out"] for c in ("c-1", "c-2"))  # step 1 takes no code
    carts = [svc.carts.get(STORE, c) for c in ("c-1", "c-2")]
    assert [c.decisions[-1].reason if c else "missing" for c in carts] == [None, "coupon_pool_empty"]

"""``cartrecovery store update``: an operator changes some of a store's settings on moto's DynamoDB. What is
not named stays as it was, secrets and keys included; a change that ``store create`` would refuse, or under
which a step could not be sent, is one line on stderr and changes nothing; two writers never undo each
other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cartrecovery.adapters.dynamo_codec import to_item
from cartrecovery.adapters.stores import DynamoStoreRepository, settings_text
from cartrecovery.domain.store import QuietHours, Store, StoreSettings
from cartrecovery.email.render import default_templates_dir
from cartrecovery.usecases.stores import InvalidStore, rotate_secret, update_store
from cartrecovery.wiring import Services

UPDATE = ("store", "update", "--id", "tea-shop")
COUPON = {"code": "WELCOME10", "description": "10%割引", "terms": "5,000円以上", "valid_days": 7}


def patch_file(tmp_path: Path, patch: Any) -> str:
    path = tmp_path / "patch.json"
    path.write_text(patch if isinstance(patch, str) else json.dumps(patch, ensure_ascii=False), encoding="utf-8")
    return str(path)


def dynamo_stores(svc: Services) -> DynamoStoreRepository:
    """The table's own repository, under the cache the wiring may put in front of it."""
    raw = getattr(svc.stores, "inner", svc.stores)
    assert isinstance(raw, DynamoStoreRepository)
    return raw


def stored(svc: Services, store: Store) -> Store:
    current = svc.stores.get(store.store_id)
    assert current is not None
    return current


def test_a_flag_changes_that_setting_and_nothing_else(svc: Services, store: Store, cli: Any) -> None:
    code, out, err = cli(*UPDATE, "--quiet-hours", "22:00-07:00", "--address", "京都府京都市中京区 4-5-6")

    assert code == 0, err
    assert "store tea-shop updated: legal.address, quiet_hours" in out
    after = stored(svc, store)
    assert after.settings.quiet_hours == QuietHours.parse("22:00-07:00")
    assert after.settings.legal.address == "京都府京都市中京区 4-5-6"
    assert after.settings.legal.sender_name == store.settings.legal.sender_name  # the rest of legal is kept
    assert (after.webhook_secrets, after.shopify_secrets) == (store.webhook_secrets, store.shopify_secrets)
    assert (after.token_key, after.salt) == (store.token_key, store.salt)  # unsubscribe links keep working


def test_a_settings_file_is_a_merge_patch(svc: Services, store: Store, cli: Any, tmp_path: Path) -> None:
    code, out, err = cli(*UPDATE, "--settings", patch_file(tmp_path, {"coupon": COUPON}))
    assert code == 0 and "updated: coupon" in out, err

    # An object merges into the one it names: the steps stay, and so does the coupon's description.
    patch = {"flows": {"cart_recovery": {"enabled": False}}, "coupon": {"code": "SPRING15"}}
    code, out, err = cli(*UPDATE, "--settings", patch_file(tmp_path, patch))

    assert code == 0, err
    assert "updated: coupon.code, flows.cart_recovery.enabled" in out
    settings = stored(svc, store).settings
    assert settings.flows["cart_recovery"].enabled is False
    assert settings.flows["cart_recovery"].steps == store.settings.flows["cart_recovery"].steps
    assert settings.coupon is not None and (settings.coupon.code, settings.coupon.description) == (
        "SPRING15",
        "10%割引",
    )

    # null puts a setting back to its default (no coupon); a list replaces the list.
    steps = [{"step": 1, "delay_seconds": 3600}, {"step": 2, "delay_seconds": 86400}]
    patch = {"coupon": None, "flows": {"cart_recovery": {"enabled": True, "steps": steps}}}
    code, out, err = cli(*UPDATE, "--settings", patch_file(tmp_path, patch))

    assert code == 0, err
    settings = stored(svc, store).settings
    assert settings.coupon is None
    assert [(s.step, s.delay_seconds) for s in settings.flows["cart_recovery"].steps] == [(1, 3600), (2, 86400)]


def test_what_store_show_prints_can_be_edited_and_given_back(
    svc: Services, store: Store, cli: Any, tmp_path: Path
) -> None:
    code, shown, _ = cli("store", "show", "--id", "tea-shop")
    assert code == 0
    edited = json.loads(shown)
    edited["frequency_cap_hours"] = 24
    code, out, err = cli(*UPDATE, "--settings", patch_file(tmp_path, edited))

    assert code == 0, err
    assert "updated: frequency_cap_hours" in out
    assert "note: webhook_secrets and shopify_secrets (as store show prints them) are not settings" in err
    after = stored(svc, store)
    assert after.settings.frequency_cap_hours == 24
    assert after.webhook_secrets == store.webhook_secrets


def test_the_same_settings_again_is_no_change(svc: Services, store: Store, cli: Any) -> None:
    code, out, _ = cli(*UPDATE, "--timezone", store.settings.timezone)
    assert code == 0 and out.strip() == "store tea-shop: no change"
    assert stored(svc, store) == store


@pytest.mark.parametrize(
    ("argv", "patch", "expected"),
    [
        ((), {"store_id": "other-shop"}, "store_id cannot change (it is 'tea-shop')"),
        (("--timezone", "Mars/Olympus"), None, "timezone must be an IANA time zone such as Asia/Tokyo"),
        (("--sender-email", "shop"), None, "sender_email must be an email address"),
        (("--sender-name", "Matcha\nShop"), None, "sender_name must be one line of text"),
        ((), {"sender_name": "Matcha\u2028Shop"}, "sender_name must be one line of text"),
        ((), {"quite_hours": "22:00-07:00"}, "'quite_hours' is not a setting (did you mean 'quiet_hours'?)"),
        ((), {"legal": {"adress": "京都市"}}, "legal.'adress' is not a setting (did you mean 'address'?)"),
        ((), {"name": None}, "invalid store settings: 'name' is required"),
        ((), {"flows": {"cart_recovery": {"enabled": "false"}}}, "flows.cart_recovery.enabled must be true or false"),
        ((), {"coupon": {"kind": "shared"}}, "a shared coupon needs a code"),
        ((), '{"legal": {"address": "京都\\udc80"}}', "legal.address must be valid Unicode"),
        ((), "[]", "must hold a JSON object of settings, not list"),
        # The shipped templates have steps 1-3: a step 4 would fail to render on every retry of its firing.
        (
            (),
            {
                "flows": {
                    "cart_recovery": {"steps": [{"step": 1, "delay_seconds": 60}, {"step": 4, "delay_seconds": 90}]}
                }
            },
            "flows.cart_recovery step 4 cannot be sent (en): ",
        ),
    ],
    ids=[
        "store-id",
        "timezone",
        "sender",
        "sender-name-line-break",
        "sender-name-line-separator",
        "typo",
        "nested-typo",
        "required",
        "enabled-text",
        "coupon",
        "surrogate",
        "list",
        "step-without-templates",
    ],
)
def test_a_bad_change_is_one_clear_error_and_changes_nothing(
    svc: Services, store: Store, cli: Any, tmp_path: Path, argv: tuple[str, ...], patch: Any, expected: str
) -> None:
    code, out, err = cli(*UPDATE, *argv, *(("--settings", patch_file(tmp_path, patch)) if patch is not None else ()))

    assert code == 2 and out == "", out
    assert err.startswith("error: ") and expected in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert stored(svc, store) == store


def test_a_step_the_store_has_its_own_templates_for_is_taken(
    svc: Services, store: Store, cli: Any, tmp_path: Path
) -> None:
    shipped = default_templates_dir() / "ja" / "cart_recovery"
    step4 = {
        f"ja/cart_recovery/step4.{part}.j2": (shipped / f"step3.{part}.j2").read_text()
        for part in ("subject", "html", "txt")
    }
    svc.stores.save_templates(store.store_id, step4, "2026-12-01T00:00:00Z")
    steps = [{"step": 1, "delay_seconds": 60}, {"step": 4, "delay_seconds": 90}]

    code, out, err = cli(*UPDATE, "--settings", patch_file(tmp_path, {"flows": {"cart_recovery": {"steps": steps}}}))

    assert code == 0 and "updated: flows.cart_recovery.steps" in out, err
    assert [s.step for s in stored(svc, store).settings.flows["cart_recovery"].steps] == [1, 4]


def test_listing_a_variant_whose_branch_of_the_stores_template_breaks_is_refused(
    svc: Services, store: Store, cli: Any, tmp_path: Path
) -> None:
    """The upload was checked as variant a only (no step listed b then): listing b must not let it be sent."""
    subject = '{% if email_variant == "b" %}{{ shop.name | shout }}{% else %}【{{ shop.name }}】{% endif %}'
    svc.stores.save_templates(store.store_id, {"ja/cart_recovery/step1.subject.j2": subject}, "2026-12-01T00:00:00Z")
    steps = [{"step": 1, "delay_seconds": 7200, "variants": ["a", "b"]}, {"step": 2, "delay_seconds": 259200}]

    code, out, err = cli(*UPDATE, "--settings", patch_file(tmp_path, {"flows": {"cart_recovery": {"steps": steps}}}))

    assert code == 2 and out == "", out
    assert "flows.cart_recovery step 1 variant b cannot be sent (ja): " in err and len(err.splitlines()) == 1, err
    assert "No filter named 'shout'" in err
    assert stored(svc, store) == store


def test_no_store_and_nothing_to_change_are_errors(svc: Services, store: Store, cli: Any) -> None:
    code, _, err = cli("store", "update", "--id", "no-such-shop", "--quiet-hours", "22:00-07:00")
    assert code == 1 and "error: no store 'no-such-shop'" in err

    code, _, err = cli(*UPDATE)
    assert code == 2 and "error: nothing to change: give --settings FILE or a setting's flag" in err


def test_an_update_racing_a_rotation_and_another_update_undoes_neither(svc: Services, store: Store) -> None:
    """The other writers land between this update's read and its write: the rotation's secret is kept (only
    the settings are written), and the other update's setting too (the patch is applied again on it)."""
    raw = dynamo_stores(svc)
    client, table = raw.client, raw.table
    calls = 0

    def meanwhile(current: Store) -> StoreSettings:
        nonlocal calls
        calls += 1
        if calls == 1:
            rotate_secret(raw, store.store_id, svc.clock)
            other = StoreSettings.from_dict({**current.settings.to_dict(), "frequency_cap_hours": 48})
            client.update_item(
                TableName=table,
                Key={"store_id": {"S": store.store_id}},
                UpdateExpression="SET settings_json = :s",
                ExpressionAttributeValues={":s": {"S": settings_text(other)}},
            )
        return StoreSettings.from_dict({**current.settings.to_dict(), "quiet_hours": "22:00-07:00"})

    result = raw.update_settings(store.store_id, meanwhile)

    assert calls == 2 and result is not None
    before, after = result
    assert before.frequency_cap_hours == 48  # the patch went onto the settings as the other writer left them
    assert (after.frequency_cap_hours, str(after.quiet_hours)) == (48, "22:00-07:00")
    final = stored(svc, store)
    assert final.settings == after
    assert len(final.webhook_secrets) == 2  # the rotation's new secret is still there


def test_a_store_kept_in_the_old_map_form_is_updated_into_json_text(svc: Services, store: Store) -> None:
    raw = dynamo_stores(svc)
    item = raw.client.get_item(TableName=raw.table, Key={"store_id": {"S": store.store_id}})["Item"]
    del item["settings_json"]
    item["settings"] = to_item({"m": store.settings.to_dict()})["m"]
    raw.client.put_item(TableName=raw.table, Item=item)

    change = update_store(svc.stores, store.store_id, {"quiet_hours": "22:00-07:00"})

    assert change.changed == ["quiet_hours"]
    item = raw.client.get_item(TableName=raw.table, Key={"store_id": {"S": store.store_id}})["Item"]
    assert "settings" not in item and json.loads(item["settings_json"]["S"])["quiet_hours"] == "22:00-07:00"


def test_the_use_case_refuses_what_its_check_refuses(svc: Services, store: Store) -> None:
    with pytest.raises(InvalidStore, match="invalid store settings: not this one"):
        update_store(svc.stores, store.store_id, {"name": "新しい名前"}, check=lambda s: "not this one")
    assert stored(svc, store) == store

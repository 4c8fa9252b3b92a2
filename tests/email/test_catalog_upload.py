"""A store's product catalog through the operator CLI: upload (checked, all or nothing), show; read back the
way the send function reads it (through its warm store cache).

The CLI runs in-process against moto's DynamoDB."""

from __future__ import annotations

import json
import secrets
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from cartrecovery.adapters.stores import MAX_CATALOG_BYTES, CachedStoreRepository, DynamoStoreRepository
from cartrecovery.domain.catalog import MAX_PRODUCTS
from cartrecovery.domain.store import Store
from cartrecovery.wiring import Services

if TYPE_CHECKING:
    from conftest import Cli

GOOD_CSV = (
    "sku,name,url,image_url,price,in_stock\n"
    "WHISK,茶筅 百本立,https://kotonoha.example.jp/p/whisk,https://kotonoha.example.jp/i/whisk.jpg,2750,true\n"
    "BOWL,抹茶碗 黒楽,https://kotonoha.example.jp/p/bowl,,6600,false\n"
    "SPOON,茶杓,https://kotonoha.example.jp/p/spoon,,,\n"
)
BAD_CSV = (
    "sku,name,url,price\n"
    "WHISK,茶筅,https://kotonoha.example.jp/p/whisk,2750\n"
    "KETTLE,鉄瓶,ftp://kotonoha.example.jp/p/kettle,9800\n"
    "CUP,,https://kotonoha.example.jp/p/cup,-1\n"
    "POT,急須,https://[kotonoha.example.jp/p/pot,4400\n"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_an_upload_is_stored_and_shown_and_the_send_path_reads_it(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    code, out, err = cli("catalog", "upload", "--store", store.store_id, str(write(tmp_path / "c.csv", GOOD_CSV)))

    assert code == 0, err
    assert "stored 3 product(s)" in out and f"for store {store.store_id}" in out
    assert "1 of them out of stock" in out and "1 of them without a price" in out
    catalog = svc.stores.get_catalog(store.store_id)
    assert catalog is not None and [p.sku for p in catalog.products] == ["WHISK", "BOWL", "SPOON"]
    whisk = catalog.by_sku["WHISK"]
    assert (whisk.name, whisk.price, whisk.image_url) == (
        "茶筅 百本立",
        Decimal("2750"),
        "https://kotonoha.example.jp/i/whisk.jpg",
    )
    assert catalog.by_sku["BOWL"].in_stock is False and catalog.by_sku["SPOON"].price is None

    code, out, _ = cli("catalog", "show", "--store", store.store_id)
    assert code == 0 and "3 product(s)" in out and "BOWL  6600  抹茶碗 黒楽" in out and "(out of stock)" in out

    # --json prints the catalog in the shape an upload takes: uploading it again changes nothing
    code, out, _ = cli("catalog", "show", "--store", store.store_id, "--json")
    assert json.loads(out)[0] == {
        "sku": "WHISK",
        "name": "茶筅 百本立",
        "url": "https://kotonoha.example.jp/p/whisk",
        "image_url": "https://kotonoha.example.jp/i/whisk.jpg",
        "price": "2750",
        "in_stock": True,
    }
    assert cli("catalog", "upload", "--store", store.store_id, str(write(tmp_path / "c.json", out)))[0] == 0
    again = svc.stores.get_catalog(store.store_id)
    assert again is not None and again.products == catalog.products


def test_bad_rows_are_rejected_naming_each_and_nothing_is_stored(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    bad = str(write(tmp_path / "bad.csv", BAD_CSV))
    code, out, err = cli("catalog", "upload", "--store", store.store_id, bad)

    assert code == 1 and out == ""
    assert "cannot be used as a catalog; nothing was stored" in err
    assert "row 3 (sku KETTLE): url must be an absolute https URL" in err
    assert "row 4 (sku CUP): name is required" in err
    assert "row 4 (sku CUP): price must be a number such as 3240 or 12.50, got '-1'" in err
    assert "row 5 (sku POT): url must be an absolute https URL, got 'https://[kotonoha" in err
    assert svc.stores.get_catalog(store.store_id) is None

    # A bad file never replaces a good catalog either
    cli("catalog", "upload", "--store", store.store_id, str(write(tmp_path / "good.csv", GOOD_CSV)))
    assert cli("catalog", "upload", "--store", store.store_id, bad)[0] == 1
    kept = svc.stores.get_catalog(store.store_id)
    assert kept is not None and len(kept.products) == 3


def test_a_json_catalog_with_half_a_surrogate_pair_is_rejected_and_a_whole_pair_is_kept(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    # JSON may escape one half of a UTF-16 pair on its own; no email could carry the name it makes.
    rows = '[{"sku": "TEA", "name": "%s", "url": "https://s.example/tea"}]'
    bad = write(tmp_path / "bad.json", rows % "\\ud83c\\u8336")
    code, _, err = cli("catalog", "upload", "--store", store.store_id, str(bad))
    assert code == 1 and "nothing was stored" in err
    assert "[0] (sku TEA): name must be valid Unicode: it holds an unpaired surrogate" in err
    assert svc.stores.get_catalog(store.store_id) is None

    whole = write(tmp_path / "whole.json", rows % "\\ud83c\\udf75\\u8336")  # 🍵茶, as a JSON encoder escapes it
    assert cli("catalog", "upload", "--store", store.store_id, str(whole))[0] == 0
    kept = svc.stores.get_catalog(store.store_id)
    assert kept is not None and [p.name for p in kept.products] == ["🍵茶"]


def test_a_catalog_over_the_limits_is_rejected_with_the_limit(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    header = "sku,name,url\n"
    too_many = header + "".join(f"S{i},n,https://s.example/{i}\n" for i in range(MAX_PRODUCTS + 1))
    code, _, err = cli("catalog", "upload", "--store", store.store_id, str(write(tmp_path / "many.csv", too_many)))
    assert code == 1 and f"at most {MAX_PRODUCTS:,} are allowed" in err

    # Names that do not compress: 5,000 of them cannot fit in one DynamoDB item
    noise = header + "".join(f"S{i},{secrets.token_hex(60)},https://s.example/{i}\n" for i in range(MAX_PRODUCTS))
    code, _, err = cli("catalog", "upload", "--store", store.store_id, str(write(tmp_path / "big.csv", noise)))
    assert code == 1 and f"at most {MAX_CATALOG_BYTES:,}" in err and "nothing was stored" in err
    assert svc.stores.get_catalog(store.store_id) is None


def test_unknown_store_and_unreadable_file_are_errors(svc: Services, store: Store, tmp_path: Path, cli: Cli) -> None:
    code, _, err = cli("catalog", "upload", "--store", "nobody", str(write(tmp_path / "c.csv", GOOD_CSV)))
    assert code == 1 and "no store 'nobody'" in err
    code, _, err = cli("catalog", "upload", "--store", store.store_id, str(tmp_path / "missing.csv"))
    assert code == 1 and "cannot read" in err
    code, out, _ = cli("catalog", "show", "--store", store.store_id)
    assert code == 0 and "has no catalog" in out


def test_a_warm_send_function_sees_a_new_catalog_once_its_store_cache_expires(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    now = [0.0]
    warm = CachedStoreRepository(
        DynamoStoreRepository(svc.dynamodb, svc.settings.stores_table), ttl_seconds=60, monotonic=lambda: now[0]
    )
    assert warm.get_catalog(store.store_id) is None  # "no catalog" is cached too

    cli("catalog", "upload", "--store", store.store_id, str(write(tmp_path / "c.csv", GOOD_CSV)))
    assert warm.get_catalog(store.store_id) is None
    now[0] = 61.0
    catalog = warm.get_catalog(store.store_id)
    assert catalog is not None and len(catalog.products) == 3
    assert warm.get(store.store_id) is not None  # the store's own item is untouched by its catalog item
    assert store.store_id in svc.stores.list_ids() and len(svc.stores.list_ids()) == 1

"""A store's own templates through the operator CLI: upload (checked, all or nothing, every A/B variant), show,
reset, preview (of any variant).

The CLI runs in-process against moto's DynamoDB; what it stored is read back through the repository the
send function uses (and its warm cache)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cartrecovery.adapters.stores import CachedStoreRepository, DynamoStoreRepository
from cartrecovery.domain.store import Store
from cartrecovery.email.overrides import MAX_OVERRIDE_BYTES
from cartrecovery.email.render import EmailRenderer
from cartrecovery.email.samples import sample_context
from cartrecovery.wiring import Services

if TYPE_CHECKING:
    from conftest import Cli

SUBJECT = "ja/cart_recovery/step1.subject.j2"
STEP1_HTML = "ja/cart_recovery/step1.html.j2"
GOOD = {
    SUBJECT: "【{{ shop.name }}】お忘れものはありませんか？\n",
    STEP1_HTML: (
        '{% extends "ja/_layout.html.j2" %}\n'
        '{% from "ja/_macros.html.j2" import cart_items, cart_button %}\n'
        "{% block content %}\n"
        '<p class="season">冬の新茶、入荷しました。</p>\n'
        "{{ cart_items(cart) }}\n"
        "{{ cart_button(cart, shop) }}\n"
        "{% endblock %}\n"
    ),
}


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def test_a_valid_upload_is_stored_and_the_send_path_renders_with_it(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    folder = write_tree(tmp_path / "mine", {**GOOD, ".DS_Store": b"\x00\x01"})

    code, out, err = cli("templates", "upload", "--store", store.store_id, str(folder))

    assert code == 0, err
    assert "stored 2 template(s)" in out and SUBJECT in out and STEP1_HTML in out
    stored = DynamoStoreRepository(svc.dynamodb, svc.settings.stores_table).get_templates(store.store_id)
    assert stored == GOOD  # exactly the two files (hidden files are not templates)

    # What a send renders: the store's overrides over the shipped set, through the renderer the send path uses.
    renderer = svc.renderer.with_overrides(svc.stores.get_templates(store.store_id))
    email = renderer.render("cart_recovery", 1, "ja", sample_context("cart_recovery", 1, "ja"))
    assert email.subject == "【ことのは商店】お忘れものはありませんか？"
    assert '<p class="season">冬の新茶、入荷しました。</p>' in email.html
    assert "配信停止" in email.html  # the shipped layout and footer still wrap it
    shipped = EmailRenderer().render("cart_recovery", 1, "ja", sample_context("cart_recovery", 1, "ja"))
    assert email.text == shipped.text  # not overridden: the packaged default
    assert renderer.render("cart_recovery", 2, "ja", sample_context("cart_recovery", 2, "ja")).subject == (
        shipped_subject(2)
    )
    # The store item itself stays as it was (ingest reads it on every request: the templates live apart).
    assert svc.stores.get(store.store_id) == store
    assert svc.stores.list_ids() == [store.store_id]
    assert svc.stores.get(store.store_id + "#templates") is None  # the templates' item is never a store


def shipped_subject(step: int) -> str:
    return EmailRenderer().render("cart_recovery", step, "ja", sample_context("cart_recovery", step, "ja")).subject


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (  # an undefined variable in a step
            {STEP1_HTML: GOOD[STEP1_HTML].replace("冬の新茶", "{{ customer.first_name }}さま、冬の新茶")},
            [f"{STEP1_HTML}:4: UndefinedError", "first_name"],
        ),
        (  # a syntax error in a partial that the shipped steps include
            {"en/_footer.txt.j2": "Thanks!\n{% if legal.address %}\n{{ legal.address }}\n"},
            ["en/_footer.txt.j2:3:", "Unexpected end of template"],
        ),
        (  # fine with the full sample, but breaks a shop without a coupon
            {"ja/cart_recovery/step2.subject.j2": "【{{ shop.name }}】クーポン {{ coupon.code }}"},
            ["ja/cart_recovery/step2.subject.j2:1: UndefinedError", "optional values empty"],
        ),
        (  # a file in the wrong place
            {"ja/cart_recovery/step1.html": "<p>hi</p>", **GOOD},
            ["ja/cart_recovery/step1.html: not a template name"],
        ),
        (  # not UTF-8
            {SUBJECT: "【{{ shop.name }}】お忘れもの".encode("shift_jis")},
            [f"{SUBJECT}: not UTF-8"],
        ),
        (  # Jinja turns the escape in a string literal into half a surrogate pair: SES could not send it
            {SUBJECT: '【{{ shop.name }}】お忘れもの{{ "\\ud83c" }}'},
            [f"{SUBJECT}: the output must be valid Unicode: it holds an unpaired surrogate"],
        ),
        (  # 54 bytes that once made a 50 MB subject (and hung the local outbox's parser)
            {SUBJECT: '{{ "x" * 50000000 }}'},
            [f"{SUBJECT}:1: SecurityError: '*' would make 50,000,000 items; at most 100,000"],
        ),
        (  # under the '*' bound each time, but a subject no client shows
            {SUBJECT: '{{ "お忘れもの" * 200 }}'},
            [f"{SUBJECT}: the subject is 1,000 characters; at most 500"],
        ),
        (  # nested loops that once hung the upload's check for minutes
            {STEP1_HTML: GOOD[STEP1_HTML].replace("冬の新茶", "{% for a in range(100000) %}{% endfor %}")},
            [f"{STEP1_HTML}:4: SecurityError: range() of 100,000 items; at most 1,000"],
        ),
        (  # a huge power: minutes of CPU for one big integer
            {SUBJECT: "{{ 10 ** 100000000 }}"},
            [f"{SUBJECT}:1: SecurityError: '**' with an exponent over 1,000"],
        ),
        (  # within every bound, but loops for longer than any send may take
            {
                STEP1_HTML: GOOD[STEP1_HTML].replace(
                    "冬の新茶",
                    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
                    "{% endfor %}{% endfor %}{% endfor %}",
                )
            },
            ["rendering the steps took over 10 s"],
        ),
    ],
    ids=[
        *("undefined", "syntax", "sparse", "misplaced", "encoding", "lone-surrogate"),
        *("huge-string", "long-subject", "huge-range", "huge-power", "slow-loops"),
    ],
)
def test_a_broken_upload_is_rejected_naming_file_and_line_and_nothing_changes(
    svc: Services,
    store: Store,
    tmp_path: Path,
    cli: Cli,
    files: dict[str, str | bytes],
    expected: list[str],
) -> None:
    assert cli("templates", "upload", "--store", store.store_id, str(write_tree(tmp_path / "ok", GOOD)))[0] == 0

    code, _out, err = cli("templates", "upload", "--store", store.store_id, str(write_tree(tmp_path / "bad", files)))

    assert code == 1
    assert "nothing was stored" in err
    for fragment in expected:
        assert fragment in err, err
    assert svc.stores.get_templates(store.store_id) == GOOD  # the earlier upload is untouched


def test_an_upload_too_big_for_one_item_is_rejected_with_the_limit(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    padding = "{# " + "x" * (MAX_OVERRIDE_BYTES // 2) + " #}\n"
    files = {f"ja/_notes{i}.html.j2": padding for i in range(3)}

    code, _, err = cli("templates", "upload", "--store", store.store_id, str(write_tree(tmp_path, files)))

    assert code == 1
    assert f"at most {MAX_OVERRIDE_BYTES:,} bytes" in err and "400 KB" in err
    assert svc.stores.get_templates(store.store_id) == {}


def test_upload_to_an_unknown_store_is_an_error(svc: Services, tmp_path: Path, cli: Cli) -> None:
    code, _, err = cli("templates", "upload", "--store", "nobody", str(write_tree(tmp_path, GOOD)))

    assert code == 1 and "no store 'nobody'" in err
    assert svc.stores.get_templates("nobody") == {}


def test_show_lists_and_prints_and_reset_goes_back_to_the_shipped_templates(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    sid = store.store_id
    assert "uses the shipped templates (none uploaded)" in cli("templates", "show", "--store", sid)[1]
    cli("templates", "upload", "--store", sid, str(write_tree(tmp_path, GOOD)))

    code, out, _ = cli("templates", "show", "--store", sid)
    assert code == 0 and "2 uploaded template(s)" in out and SUBJECT in out and STEP1_HTML in out
    assert cli("templates", "show", "--store", sid, "--name", SUBJECT)[1] == GOOD[SUBJECT]

    code, out, _ = cli("templates", "reset", "--store", sid)
    assert code == 0 and "uses the shipped templates again" in out
    assert svc.stores.get_templates(sid) == {}
    assert "had no uploaded templates" in cli("templates", "reset", "--store", sid)[1]


def test_a_warm_send_function_sees_an_upload_once_its_store_cache_expires(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    now = [0.0]
    warm = CachedStoreRepository(
        DynamoStoreRepository(svc.dynamodb, svc.settings.stores_table), ttl_seconds=60, monotonic=lambda: now[0]
    )
    assert warm.get_templates(store.store_id) == {}  # read once, then cached like the store's settings

    cli("templates", "upload", "--store", store.store_id, str(write_tree(tmp_path, GOOD)))
    assert warm.get_templates(store.store_id) == {}
    now[0] = 61.0
    assert warm.get_templates(store.store_id) == GOOD


def test_preview_writes_the_step_with_the_stores_settings_and_templates(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    cli("templates", "upload", "--store", store.store_id, str(write_tree(tmp_path / "tpl", GOOD)))
    out_dir = tmp_path / "out"

    code, out, err = cli("preview", "--store", store.store_id, "--step", "1", "--out", str(out_dir))

    assert code == 0, err
    html_file, text_file = out_dir / "step1.ja.html", out_dir / "step1.ja.txt"
    assert f"subject: 【{store.settings.name}】お忘れものはありませんか？" in out
    assert str(html_file) in out and str(text_file) in out
    page, text = html_file.read_text(encoding="utf-8"), text_file.read_text(encoding="utf-8")
    assert '<p class="season">冬の新茶、入荷しました。</p>' in page  # the uploaded template
    for shown in (store.settings.name, store.settings.legal.address, "抹茶ラテ"):  # store settings, sample cart
        assert shown in page and shown in text


def test_preview_of_step_two_in_english_shows_the_stores_coupon(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    code, _out, err = cli("preview", "--store", store.store_id, "--step", "2", "--locale", "en", "--out", str(tmp_path))

    assert code == 0, err
    text = (tmp_path / "step2.en.txt").read_text(encoding="utf-8")
    assert "KOTO15" in text and "Organic Sencha Green Tea" in text
    assert (tmp_path / "step2.en.html").is_file()


def test_preview_of_a_folder_before_upload_reports_its_errors(
    svc: Services, store: Store, tmp_path: Path, cli: Cli
) -> None:
    folder = write_tree(tmp_path / "draft", {SUBJECT: "{{ shop.name }}\n{{ shop.slogan }}"})

    code, _, err = cli(
        "preview", "--store", store.store_id, "--step", "1", "--dir", str(folder), "--out", str(tmp_path)
    )

    assert code == 1 and f"{SUBJECT}:2: UndefinedError" in err
    assert not list(tmp_path.glob("step1.*"))


# Compiles, and variant a renders: only a shopper drawn into b would meet the missing filter, at send time.
BROKEN_B = {
    SUBJECT: '{% if email_variant == "b" %}{{ shop.name | shout }}{% else %}【{{ shop.name }}】お忘れもの{% endif %}'
}


def test_an_upload_whose_b_branch_breaks_is_rejected_for_a_store_testing_b(
    svc: Services, store: Store, ab_store: Store, tmp_path: Path, cli: Cli
) -> None:
    folder = str(write_tree(tmp_path, BROKEN_B))

    code, _out, err = cli("templates", "upload", "--store", ab_store.store_id, folder)

    assert code == 1 and "nothing was stored" in err
    assert f"  {SUBJECT}:1: TemplateRuntimeError: No filter named 'shout' found. (variant b)\n" in err, err
    assert svc.stores.get_templates(ab_store.store_id) == {}
    # A store that sends variant a alone takes it: nothing it sends runs the b branch.
    assert cli("templates", "upload", "--store", store.store_id, folder)[0] == 0


def test_preview_shows_the_chosen_variant_beside_the_others(
    svc: Services, ab_store: Store, tmp_path: Path, cli: Cli
) -> None:
    name = ab_store.settings.name

    code, out, err = cli("preview", "--store", ab_store.store_id, "--step", "1", "--out", str(tmp_path))
    assert code == 0, err
    assert f"subject: 【{name}】カートに商品が残っています" in out
    assert "note: step 1 lists the variants a, b; this is a (choose with --variant)" in out
    assert (tmp_path / "step1.ja.html").is_file()

    code, out, err = cli(
        "preview", "--store", ab_store.store_id, "--step", "1", "--variant", "b", "--out", str(tmp_path)
    )
    assert code == 0, err
    assert f"subject: 【{name}】お買い忘れはありませんか？カートの商品をお取り置き中です" in out
    assert str(tmp_path / "step1.ja.b.html") in out and str(tmp_path / "step1.ja.b.txt") in out
    assert (tmp_path / "step1.ja.b.html").is_file() and "note:" not in out


@pytest.mark.parametrize(
    ("step", "variant", "expected"),
    [
        ("1", "c", "error: cart_recovery step 1 has no variant 'c'; its variants: a, b\n"),
        ("2", "b", "error: cart_recovery step 2 has no variant 'b'; its variants: a\n"),
    ],
    ids=["unlisted", "step-without-variants"],
)
def test_preview_of_a_variant_the_step_does_not_list_is_an_error_naming_its_variants(
    svc: Services, ab_store: Store, tmp_path: Path, cli: Cli, step: str, variant: str, expected: str
) -> None:
    code, out, err = cli(
        "preview", "--store", ab_store.store_id, "--step", step, "--variant", variant, "--out", str(tmp_path)
    )

    assert code == 1 and err == expected and out == ""
    assert not list(tmp_path.iterdir())

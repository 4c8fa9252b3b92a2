"""A marketer's round trip on the local stack: create a store, upload templates with the CLI, and the next
step-1 email uses them; a broken upload is refused with file and line; the browser preview shows the same,
as any A/B variant of the step.

Everything happens in a store of its own (the demo store's templates are shared by every other test)."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

SUBJECT = "ja/cart_recovery/step1.subject.j2"
STEP1_HTML = "ja/cart_recovery/step1.html.j2"
GOOD = {
    SUBJECT: "【{{ shop.name }}】冬の新茶とお忘れもの\n",
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
BROKEN = {STEP1_HTML: GOOD[STEP1_HTML].replace("冬の新茶", "{{ shop.season }}の新茶")}


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def shop(local_stack: Any) -> dict[str, str]:
    """A store of this module's own, created with the CLI; its id and webhook secret."""
    store_id = "tpl-" + local_stack.new_id("s")[2:10]
    created = local_stack.cli(
        "store", "create", "--id", store_id, "--name", "冬木茶房", "--sender-email", "shop@fuyuki.example.jp",
        "--url", "https://shop.example.jp/", "--legal-name", "株式会社冬木", "--address", "札幌市中央区 1-1",
        "--contact", "support@fuyuki.example.jp",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = re.search(r"webhook secret \(Standard Webhooks\): (whsec_\S+)", created.stdout)
    assert secret is not None, created.stdout
    return {"id": store_id, "secret": secret.group(1)}


def step_one_email(stack: Any, shop: dict[str, str]) -> dict[str, Any]:
    stack.advance_to_local_time(10)
    cart_id, email = stack.new_id(), stack.unique_email("fuyu")
    status, body = stack.post_event(
        stack.cart_event(cart_id, email, stack.now()), store=shop["id"], secret=shop["secret"]
    )
    assert status == 202, body
    stack.advance(3 * 3600)
    messages = stack.outbox(to=email)
    assert len(messages) == 1, f"{messages}\n{stack.log_text()[-3000:]}"
    return messages[0]


def test_an_uploaded_template_is_used_by_the_next_step_one_email(
    local_stack: Any, shop: dict[str, str], tmp_path: Path
) -> None:
    assert local_stack.cli("templates", "reset", "--store", shop["id"]).returncode == 0
    before = step_one_email(local_stack, shop)
    assert before["subject"] == "【冬木茶房】カートに商品が残っています"  # the shipped template

    uploaded = local_stack.cli("templates", "upload", "--store", shop["id"], str(write_tree(tmp_path, GOOD)))
    assert uploaded.returncode == 0, uploaded.stderr
    assert "stored 2 template(s)" in uploaded.stdout

    after = step_one_email(local_stack, shop)
    assert after["subject"] == "【冬木茶房】冬の新茶とお忘れもの"
    assert '<p class="season">冬の新茶、入荷しました。</p>' in after["html"]
    assert "配信停止" in after["html"] and "株式会社冬木" in after["html"]  # shipped layout and legal footer
    assert "抹茶ラテ" in after["text"] and "冬の新茶" not in after["text"]  # text part: still the shipped one

    # Other stores keep the shipped templates.
    demo = local_stack.get("/_local/preview?store=demo&step=1&part=subject")
    assert demo.status == 200 and "カートに商品が残っています" in demo.text


def test_a_broken_upload_is_refused_with_file_and_line_and_changes_nothing(
    local_stack: Any, shop: dict[str, str], tmp_path: Path
) -> None:
    good = local_stack.cli("templates", "upload", "--store", shop["id"], str(write_tree(tmp_path / "g", GOOD)))
    assert good.returncode == 0, good.stderr

    broken = local_stack.cli("templates", "upload", "--store", shop["id"], str(write_tree(tmp_path / "b", BROKEN)))

    assert broken.returncode == 1
    assert f"{STEP1_HTML}:4: UndefinedError" in broken.stderr and "season" in broken.stderr
    assert "nothing was stored" in broken.stderr
    shown = local_stack.cli("templates", "show", "--store", shop["id"], "--name", SUBJECT)
    assert shown.returncode == 0 and shown.stdout == GOOD[SUBJECT]
    assert step_one_email(local_stack, shop)["subject"] == "【冬木茶房】冬の新茶とお忘れもの"


def test_the_browser_preview_shows_the_stores_templates_and_is_linked_from_the_console(
    local_stack: Any, shop: dict[str, str], tmp_path: Path
) -> None:
    assert (
        local_stack.cli("templates", "upload", "--store", shop["id"], str(write_tree(tmp_path, GOOD))).returncode == 0
    )
    query = urllib.parse.urlencode({"store": shop["id"], "step": 1, "locale": "ja"})

    page = local_stack.get(f"/_local/preview?{query}")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert '<p class="season">冬の新茶、入荷しました。</p>' in page.text and "冬木茶房" in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # no script runs in a preview
    text = local_stack.get(f"/_local/preview?{query}&part=text")
    assert text.status == 200 and text.headers["content-type"].startswith("text/plain")
    assert "冬木茶房" in text.text and "<p" not in text.text
    english = local_stack.get(f"/_local/preview?store={shop['id']}&step=3&locale=en&part=subject")
    assert english.status == 200 and "冬木茶房" in english.text
    assert local_stack.get(f"/_local/preview?store={shop['id']}&step=9").status == 404
    assert local_stack.get("/_local/preview?store=nobody&step=1").status == 404
    assert local_stack.get(f"/_local/preview?store={shop['id']}%23templates&step=1").status == 404

    console = local_stack.get(f"/_local/?store={shop['id']}")
    assert console.status == 200
    assert f'href="/_local/preview?store={shop["id"]}&amp;flow=cart_recovery&amp;step=1&amp;locale=ja"' in (
        console.text
    )

    reset = local_stack.cli("templates", "reset", "--store", shop["id"])
    assert reset.returncode == 0, reset.stderr
    assert "冬の新茶" not in local_stack.get(f"/_local/preview?{query}").text


AB_STEPS = [
    {"step": 1, "delay_seconds": 7200, "variants": ["a", "b"]},
    {"step": 2, "delay_seconds": 259200},
    {"step": 3, "delay_seconds": 604800},
]


def test_the_browser_preview_shows_the_variant_asked_for_and_names_the_steps_variants_otherwise(
    local_stack: Any,
) -> None:
    store_id, _ = local_stack.new_store({"flows": {"cart_recovery": {"steps": AB_STEPS}}})

    def subject(step: int, variant: str | None = None) -> Any:
        chosen = f"&variant={variant}" if variant else ""
        return local_stack.get(f"/_local/preview?store={store_id}&step={step}&locale=ja&part=subject{chosen}")

    assert subject(1).text == subject(1, "a").text == "【新茶屋】カートに商品が残っています\n"
    assert subject(1, "b").status == 200
    assert subject(1, "b").text == "【新茶屋】お買い忘れはありませんか？カートの商品をお取り置き中です\n"
    for step, variant, listed in ((1, "c", "a, b"), (2, "b", "a")):
        unknown = subject(step, variant)
        expected = f"cart_recovery step {step} has no variant {variant!r}; its variants: {listed}"
        assert unknown.status == 404 and unknown.json()["detail"] == expected
        assert unknown.headers["content-type"].startswith("application/problem+json")
    assert subject(1, "B!").status == 400

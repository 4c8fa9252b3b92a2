"""The small HTML pages a shopper sees after following an unsubscribe link. Every dynamic value is
escaped; the pages have no script and no external resources."""

from __future__ import annotations

from html import escape

_TEXT = {
    "ja": {
        "confirm_title": "配信停止の確認",
        "confirm_body": "{shop} からのお知らせメールの配信を停止します。よろしければ下のボタンを押してください。",
        "button": "配信を停止する",
        "done_title": "配信を停止しました",
        "done_body": "{shop} からのお知らせメールは今後お送りしません。ご利用ありがとうございました。",
        "missing_title": "ページが見つかりません",
        "missing_body": "このリンクは無効か、期限が切れています。",
        "bad_title": "リクエストを処理できません",
        "bad_body": "配信停止のリクエストの形式が正しくありません。",
        "unavailable_title": "ただいま処理できません",
        "unavailable_body": "配信停止を受け付けられませんでした。しばらくしてからもう一度お試しください。",
    },
    "en": {
        "confirm_title": "Confirm unsubscribe",
        "confirm_body": "You are about to stop receiving emails from {shop}. Press the button to confirm.",
        "button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done_body": "You will not receive further emails from {shop}.",
        "missing_title": "Page not found",
        "missing_body": "This link is invalid or has expired.",
        "bad_title": "Request not understood",
        "bad_body": "The unsubscribe request was not in the expected form.",
        "unavailable_title": "Please try again",
        "unavailable_body": "Your unsubscribe could not be processed just now. Please try again in a moment.",
    },
}


def _page(locale: str, title: str, body: str, form_action: str | None = None, button: str = "") -> str:
    form = ""
    if form_action is not None:
        form = (
            f'<form method="post" action="{escape(form_action)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit" style="padding:12px 24px;font-size:16px">{escape(button)}</button></form>'
        )
    return (
        f'<!doctype html><html lang="{escape(locale)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title></head>"
        '<body style="font-family:sans-serif;max-width:560px;margin:40px auto;padding:0 16px;line-height:1.6">'
        f"<h1>{escape(title)}</h1><p>{escape(body)}</p>{form}</body></html>"
    )


def _text(locale: str) -> dict[str, str]:
    return _TEXT.get(locale, _TEXT["en"])


def confirm_page(locale: str, shop: str, action: str) -> str:
    t = _text(locale)
    return _page(locale, t["confirm_title"], t["confirm_body"].format(shop=shop), action, t["button"])


def done_page(locale: str, shop: str) -> str:
    t = _text(locale)
    return _page(locale, t["done_title"], t["done_body"].format(shop=shop))


def not_found_page(locale: str = "ja") -> str:
    t = _text(locale)
    return _page(locale, t["missing_title"], t["missing_body"])


def bad_request_page(locale: str = "ja") -> str:
    t = _text(locale)
    return _page(locale, t["bad_title"], t["bad_body"])


def unavailable_page(locale: str = "ja") -> str:
    """A passing failure (the service is throttled or down): the link is fine and should be tried again."""
    t = _text(locale)
    return _page(locale, t["unavailable_title"], t["unavailable_body"])

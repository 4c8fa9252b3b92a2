"""Money as shown in emails: exact decimals rounded half up to the currency's minor unit, never floats.

Formats, by locale (only the language part counts: ``ja-JP`` is ``ja``):

- ``ja`` with JPY: ``2,560円``.
- every other case with a currency we know a symbol for: the symbol first, ``¥2,560``, ``$12.50``,
  ``€12.50``, ``£12.50``. Japanese readers get the same symbol form for foreign currencies (``$12.50``),
  which is how Japanese shops usually print them, rather than ``12.50ドル`` or ``12.50 USD``.
- a currency without a known symbol: the code after the amount, ``12.50 CHF``.

Grouping is always ``,`` and the decimal mark ``.``: shops in other locales get the English form.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 exponents that differ from the usual 2.
_ZERO_DECIMAL = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV")
_ZERO_DECIMAL_CFA_CFP = ("XAF", "XOF", "XPF")
_THREE_DECIMAL = ("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND")
_MINOR_UNITS = {**dict.fromkeys(_ZERO_DECIMAL + _ZERO_DECIMAL_CFA_CFP, 0), **dict.fromkeys(_THREE_DECIMAL, 3)}

_SYMBOLS = {
    "JPY": "¥",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "KRW": "₩",
    "INR": "₹",
    "CNY": "CN¥",
    "AUD": "A$",
    "CAD": "CA$",
    "NZD": "NZ$",
    "HKD": "HK$",
    "SGD": "S$",
    "TWD": "NT$",
}


def minor_units(currency: str) -> int:
    """Digits after the decimal mark for an ISO 4217 code (JPY 0, USD 2, KWD 3); unknown codes get 2."""
    return _MINOR_UNITS.get(currency.strip().upper(), 2)


def format_money(amount: Decimal | int, currency: str, locale: str) -> str:
    """``amount`` (major units) as the recipient reads it, e.g. ``2,560円`` (ja, JPY) or ``$12.50`` (en, USD)."""
    if isinstance(amount, (float, bool)):
        raise TypeError("money amounts must be Decimal or int, never float")
    code = currency.strip().upper()
    places = minor_units(code)
    value = Decimal(amount).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if value == 0:
        value = abs(value)  # no "-¥0"
    sign = "-" if value < 0 else ""
    number = f"{abs(value):,.{places}f}"
    language = locale.replace("_", "-").split("-")[0].lower()
    if language == "ja" and code == "JPY":
        return f"{sign}{number}円"
    symbol = _SYMBOLS.get(code)
    if symbol is None:
        return f"{sign}{number} {code}"
    return f"{sign}{symbol}{number}"

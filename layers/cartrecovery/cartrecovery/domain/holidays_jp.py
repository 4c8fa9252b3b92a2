"""Japanese public holidays (国民の祝日) and the year-end closing days, computed rather than listed.

The rules are those of the 祝日法 in force since 2020 (天皇誕生日 on 23 February); the one-off moves of
2020 and 2021 for the Olympic Games are not modelled, as only future dates matter for sending. The
equinox days use the usual approximation, exact for 1980-2099 against the 国立天文台's announcements.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

YEAR_END = ((12, 29), (12, 30), (12, 31), (1, 1), (1, 2), (1, 3))  # 年末年始: most shops and carriers close


def _nth_monday(year: int, month: int, nth: int) -> date:
    first = date(year, month, 1)
    offset = (7 - first.weekday()) % 7  # Monday is weekday 0
    return first + timedelta(days=offset + 7 * (nth - 1))


def _equinox(year: int, base: float) -> int:
    return int(base + 0.242194 * (year - 1980) - (year - 1980) // 4)


@cache
def holidays(year: int) -> frozenset[date]:
    """Every public holiday of ``year``, with 振替休日 and 国民の休日."""
    days = {
        date(year, 1, 1),  # 元日
        _nth_monday(year, 1, 2),  # 成人の日
        date(year, 2, 11),  # 建国記念の日
        date(year, 2, 23),  # 天皇誕生日
        date(year, 3, _equinox(year, 20.8431)),  # 春分の日
        date(year, 4, 29),  # 昭和の日
        date(year, 5, 3),  # 憲法記念日
        date(year, 5, 4),  # みどりの日
        date(year, 5, 5),  # こどもの日
        _nth_monday(year, 7, 3),  # 海の日
        date(year, 8, 11),  # 山の日
        _nth_monday(year, 9, 3),  # 敬老の日
        date(year, 9, _equinox(year, 23.2488)),  # 秋分の日
        _nth_monday(year, 10, 2),  # スポーツの日
        date(year, 11, 3),  # 文化の日
        date(year, 11, 23),  # 勤労感謝の日
    }
    # 国民の休日: a weekday squeezed between two holidays (September, in some years).
    for day in sorted(days):
        middle = day + timedelta(days=1)
        if middle + timedelta(days=1) in days and middle not in days and middle.weekday() != 6:
            days.add(middle)
    # 振替休日: a holiday on a Sunday moves to the next day that is not already a holiday.
    for day in sorted(d for d in days if d.weekday() == 6):
        substitute = day + timedelta(days=1)
        while substitute in days:
            substitute += timedelta(days=1)
        days.add(substitute)
    return frozenset(days)


def is_holiday(day: date) -> bool:
    return day in holidays(day.year)


def is_closed_day(day: date) -> bool:
    """A public holiday or one of the year-end days, on which a store may choose not to email."""
    return (day.month, day.day) in YEAR_END or is_holiday(day)

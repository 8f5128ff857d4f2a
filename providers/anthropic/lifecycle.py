"""Claude model ids that Anthropic has deprecated or retired, with their dates.

From Anthropic's model-deprecations page
(https://platform.claude.com/docs/en/about-claude/model-deprecations) as of 2026-12-01.
A deprecated model still answers until its retirement date; a retired one fails every
request.  Dates are for the Claude API (Bedrock and Vertex keep their own schedules).
Update this table when the page changes; ids not in it are current.
"""

from __future__ import annotations

from datetime import date

from providers.base import ModelLifecycle

AS_OF = date(2026, 12, 1)

_TABLE: dict[str, tuple[date, date, str]] = {  # id: (deprecated, retires, replacement)
    "claude-sonnet-4-5-20250929": (date(2026, 9, 30), date(2026, 11, 30), "claude-sonnet-5-5"),
    "claude-sonnet-4-5": (date(2026, 9, 30), date(2026, 11, 30), "claude-sonnet-5-5"),
    "claude-opus-4-1-20250805": (date(2026, 6, 5), date(2026, 8, 5), "claude-opus-4-8"),
    "claude-opus-4-1": (date(2026, 6, 5), date(2026, 8, 5), "claude-opus-4-8"),
    "claude-sonnet-4-20250514": (date(2026, 4, 14), date(2026, 6, 15), "claude-sonnet-4-6"),
    "claude-sonnet-4-0": (date(2026, 4, 14), date(2026, 6, 15), "claude-sonnet-4-6"),
    "claude-opus-4-20250514": (date(2026, 4, 14), date(2026, 6, 15), "claude-opus-4-8"),
    "claude-opus-4-0": (date(2026, 4, 14), date(2026, 6, 15), "claude-opus-4-8"),
    "claude-3-haiku-20240307": (date(2026, 2, 19), date(2026, 4, 20), "claude-haiku-4-5-20251001"),
    "claude-3-5-haiku-20241022": (
        date(2025, 12, 19),
        date(2026, 2, 19),
        "claude-haiku-4-5-20251001",
    ),
    "claude-3-7-sonnet-20250219": (date(2025, 10, 28), date(2026, 2, 19), "claude-sonnet-4-6"),
    "claude-3-opus-20240229": (date(2025, 6, 30), date(2026, 1, 5), "claude-opus-4-8"),
    "claude-3-5-sonnet-20241022": (date(2025, 8, 13), date(2025, 10, 28), "claude-sonnet-4-6"),
    "claude-3-5-sonnet-20240620": (date(2025, 8, 13), date(2025, 10, 28), "claude-sonnet-4-6"),
    "claude-3-sonnet-20240229": (date(2025, 1, 21), date(2025, 7, 21), "claude-sonnet-4-6"),
    "claude-2.1": (date(2025, 1, 21), date(2025, 7, 21), "claude-opus-4-8"),
    "claude-2.0": (date(2025, 1, 21), date(2025, 7, 21), "claude-opus-4-8"),
}


def lifecycle(model_id: str, today: date) -> ModelLifecycle | None:
    """`model_id`'s state on `today`, or None while it is current."""
    entry = _TABLE.get(model_id)
    if entry is None or today < entry[0]:
        return None
    deprecated, retires, replacement = entry
    return ModelLifecycle(model_id, retires <= today, deprecated, retires, replacement)

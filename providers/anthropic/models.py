"""What each Claude model accepts, from its model id.

The table is matched on the id's family and version (`claude-sonnet-4-6`,
`claude-haiku-4-5-20251001`), so a new dated id of a known family is right on day one;
an id that names no known family and version is treated like the newest models (the
strictest rules).  Per-alias `capabilities:` in config.yaml override the table, and the
provider learns from an upstream 400 that names a parameter or the prefill.

The rules (Anthropic's migration guides and release notes, as of 2026-12):
- a final assistant turn (prefill) is refused from the 4.6 models on, and with thinking;
- temperature, top_p and top_k are refused by Opus 4.7+, Sonnet 5+ and Haiku 5.5+, and by
  every model under API version 2026-10-21; from 4.1 to 4.5, temperature and top_p
  together are refused (top_p is then left out);
- thinking is `{type: adaptive}` with `effort` from 4.6 on, `{type: enabled,
  budget_tokens}` before.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from providers.base import SAMPLING_PARAMS, Capabilities, UpstreamRequest
from providers.errors import UpstreamRejected

log = logging.getLogger(__name__)

STRICT_API_VERSION = "2026-10-21"  # no sampling parameter on any model

# A minor version is one or two digits; an eight-digit date is not one (claude-opus-4-20250514).
_ID = re.compile(
    r"^claude-(?P<family>opus|sonnet|haiku)-(?P<major>\d+)(?:-(?P<minor>\d{1,2})(?!\d))?"
)
# (family, first version that refuses sampling parameters)
_NO_SAMPLING_FROM = {"opus": (4, 7), "sonnet": (5, 0), "haiku": (5, 5)}
_NO_PREFILL_FROM = (4, 6)
_ONE_OF_TEMPERATURE_TOP_P = ((4, 1), (4, 6))  # from, until
_NEWEST = (99, 0)  # an id the table cannot read: treated like the newest models


@dataclass(frozen=True, slots=True)
class ModelRules:
    """What one model accepts, the table's defaults and config's overrides applied."""

    prefill: bool
    sampling: frozenset[str]  # the sampling parameters it accepts
    adaptive_thinking: bool
    temperature_or_top_p: bool = False  # one of the two, not both


def family_and_version(model_id: str) -> tuple[str, tuple[int, int]]:
    """`claude-sonnet-4-6` → ("sonnet", (4, 6)); an unreadable id → ("", newest)."""
    match = _ID.match(model_id)
    if match is None:
        return "", _NEWEST
    minor = match.group("minor")
    return match.group("family"), (int(match.group("major")), int(minor) if minor else 0)


def rules_for(
    model_id: str,
    api_version: str,
    overrides: Capabilities,
    refused: frozenset[str] = frozenset(),
    thinking: bool = False,
) -> ModelRules:
    """The table's rules for `model_id`, then config's `overrides`, then what the upstream
    was seen to refuse (`Lessons`): reality wins.  No model takes a prefill with thinking."""
    family, version = family_and_version(model_id)
    no_sampling_from = _NO_SAMPLING_FROM.get(family, (0, 0))
    takes_sampling = api_version < STRICT_API_VERSION and version < no_sampling_from
    sampling = set()
    for param in SAMPLING_PARAMS:
        given = getattr(overrides, param)
        if (takes_sampling if given is None else given) and param not in refused:
            sampling.add(param)
    prefill = version < _NO_PREFILL_FROM if overrides.prefill is None else overrides.prefill
    since, until = _ONE_OF_TEMPERATURE_TOP_P
    return ModelRules(
        prefill and "prefill" not in refused and not thinking,
        frozenset(sampling),
        adaptive_thinking=version >= (4, 6),
        temperature_or_top_p=since <= version < until,
    )


class Lessons:
    """What upstream 400s taught about each model, kept for the life of the process.

    When a model refuses a sampling parameter or a prefill that the table let through
    (a model newer than the table, a wrong override), the 400's message names it: the
    request is tried once more without it, and every later request leaves it out.
    """

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._refused: dict[str, set[str]] = {}

    def refused(self, model_id: str) -> frozenset[str]:
        return frozenset(self._refused.get(model_id, ()))

    def learn(
        self, model_id: str, error: UpstreamRejected, request: UpstreamRequest, rules: ModelRules
    ) -> bool:
        """True when `error` names something this request sent that is now known refused."""
        detail = error.detail.lower()
        sent = {p for p in request.sampling() if p in rules.sampling}
        if rules.prefill and (request.continue_from or request.messages[-1].role == "assistant"):
            sent.add("prefill")
        known = self._refused.setdefault(model_id, set())
        named = {name for name in sent if name in detail}
        if named >= {"temperature", "top_p"} and "both" in detail:
            named = {"top_p"}  # "temperature and top_p cannot both be specified"
        new = named - known
        if not new:
            return False
        known.update(new)
        log.warning(
            "%s/%s refused %s: left out of its requests from now on",
            self._provider,
            model_id,
            ", ".join(sorted(new)),
        )
        return True

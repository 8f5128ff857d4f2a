"""What each Claude model accepts, and how a request is shaped for it."""

from __future__ import annotations

import pytest

from providers.anthropic.models import Lessons, family_and_version, rules_for
from providers.anthropic.shared import dropped_params, model_options, to_anthropic_params
from providers.base import CONTINUE_PROMPT, Capabilities, Message, UpstreamRequest
from providers.errors import UpstreamRejected

OLD, STRICT = "2023-06-01", "2026-10-21"
NONE = Capabilities()


@pytest.mark.parametrize(
    ("model", "family", "version"),
    [
        ("claude-sonnet-4-5-20250929", "sonnet", (4, 5)),
        ("claude-sonnet-4-6", "sonnet", (4, 6)),
        ("claude-haiku-4-5-20251001", "haiku", (4, 5)),
        ("claude-sonnet-5", "sonnet", (5, 0)),
        ("claude-sonnet-5-5", "sonnet", (5, 5)),
        ("claude-opus-4-7-20270101", "opus", (4, 7)),
        ("claude-opus-4-20250514", "opus", (4, 0)),  # a date is not a minor version
        ("claude-fable-5-2", "", (99, 0)),  # a family the table does not know: newest rules
        ("gpt-4o", "", (99, 0)),
    ],
)
def test_family_and_version_are_read_from_the_model_id(model, family, version):
    assert family_and_version(model) == (family, version)


@pytest.mark.parametrize(
    ("model", "api_version", "sampling", "prefill"),
    [
        ("claude-sonnet-4-5-20250929", OLD, {"temperature", "top_p", "top_k"}, True),
        ("claude-haiku-4-5-20251001", OLD, {"temperature", "top_p", "top_k"}, True),
        ("claude-sonnet-4-6", OLD, {"temperature", "top_p", "top_k"}, False),
        ("claude-opus-4-6", OLD, {"temperature", "top_p", "top_k"}, False),
        ("claude-opus-4-7", OLD, set(), False),
        ("claude-sonnet-5-5", OLD, set(), False),
        ("claude-haiku-5-5", OLD, set(), False),
        ("claude-haiku-5-1-20270101", OLD, {"temperature", "top_p", "top_k"}, False),
        ("claude-sonnet-4-6", STRICT, set(), False),
        ("claude-haiku-4-5-20251001", STRICT, set(), True),
        ("claude-next-7", OLD, set(), False),
    ],
)
def test_the_table_knows_what_each_model_accepts(model, api_version, sampling, prefill):
    rules = rules_for(model, api_version, NONE)
    assert (set(rules.sampling), rules.prefill) == (sampling, prefill)


def test_config_overrides_the_table_and_lessons_override_config():
    said = Capabilities(prefill=True, temperature=True, top_k=False)
    rules = rules_for("claude-sonnet-5-5", OLD, said)
    assert (rules.prefill, set(rules.sampling)) == (True, {"temperature"})
    learned = rules_for("claude-sonnet-5-5", OLD, said, frozenset({"temperature", "prefill"}))
    assert (learned.prefill, set(learned.sampling)) == (False, set())


REQUEST = UpstreamRequest(
    messages=(Message("user", "count to five"),), max_tokens=50, temperature=0.7, top_p=0.9
)


def test_accepted_sampling_is_sent_and_refused_sampling_is_reported():
    takes, dropped = rules_for("claude-sonnet-4-6", OLD, NONE), set[str]()
    assert to_anthropic_params(REQUEST, takes, dropped)["temperature"] == 0.7
    assert dropped_params(REQUEST, takes) == [] and dropped == set()
    refuses = rules_for("claude-sonnet-5-5", OLD, NONE)
    assert "temperature" not in to_anthropic_params(REQUEST, refuses, dropped)
    assert dropped_params(REQUEST, refuses) == ["temperature", "top_p"]
    assert dropped == {"temperature", "top_p"}


def test_a_continuation_is_a_prefill_where_the_model_takes_one():
    request = UpstreamRequest(
        messages=(Message("user", "count"), Message("assistant", "1, ")),
        max_tokens=5,
        continue_from="2, 3, ",
    )
    rules = rules_for("claude-haiku-4-5-20251001", OLD, NONE)
    messages = to_anthropic_params(request, rules, set())["messages"]
    assert messages == [
        {"role": "user", "content": "count"},
        {"role": "assistant", "content": "1, 2, 3,"},  # one turn, no trailing whitespace
    ]


def test_a_continuation_without_prefill_asks_to_go_on_in_a_user_turn():
    request = UpstreamRequest(
        messages=(Message("user", "count"),), max_tokens=5, continue_from="1, 2, "
    )
    rules = rules_for("claude-sonnet-4-6", OLD, NONE)
    messages = to_anthropic_params(request, rules, set())["messages"]
    assert messages == [
        {"role": "user", "content": "count"},
        {"role": "assistant", "content": "1, 2,"},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]


def test_a_400_that_names_what_was_sent_is_learned_once():
    lessons = Lessons("anthropic")
    rules = rules_for("claude-next-sonnet", OLD, Capabilities(temperature=True))
    refusal = UpstreamRejected("rejected", detail="`temperature` is deprecated for this model.")
    assert lessons.learn("claude-next-sonnet", refusal, REQUEST, rules)
    assert lessons.refused("claude-next-sonnet") == {"temperature"}
    assert not lessons.learn("claude-next-sonnet", refusal, REQUEST, rules)  # known already
    unrelated = UpstreamRejected("rejected", detail="max_tokens: must be at most 8192")
    assert not lessons.learn("claude-next-sonnet", unrelated, REQUEST, rules)


def test_budgeted_thinking_becomes_adaptive_on_the_models_that_take_only_that():
    options = {"thinking": {"type": "enabled", "budget_tokens": 2048}, "seed": 1}
    old = model_options(options, rules_for("claude-haiku-4-5-20251001", OLD, NONE))
    new = model_options(options, rules_for("claude-sonnet-5-5", OLD, NONE))
    assert old == options
    assert new == {"thinking": {"type": "adaptive"}, "seed": 1}


def test_with_thinking_on_no_model_gets_a_prefill():
    rules = rules_for("claude-haiku-4-5-20251001", OLD, NONE, thinking=True)
    assert not rules.prefill

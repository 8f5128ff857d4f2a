"""A continuation joins the text already sent without repeating it."""

from __future__ import annotations

import pytest

from policies.seam import HOLD, Seam


def join(sent: str, *chunks: str) -> str:
    seam = Seam(sent)
    return "".join(seam.feed(chunk) for chunk in chunks) + seam.flush()


@pytest.mark.parametrize(
    ("sent", "chunks", "joined"),
    [
        ("The quick ", ["jumps", " over."], "jumps over."),
        ("The quick ", [" jumps", " over."], "jumps over."),  # whitespace at the seam once
        ("The quick", [" jumps"], " jumps"),
        ("The quick brown fox", ["quick brown fox", " jumps."], " jumps."),
        ("The quick brown fox ", [" brown fox jumps."], "jumps."),
        ("One. Two. Three", ["Three, four."], "Three, four."),  # a short overlap is kept
        ("", ["Hello", " world"], "Hello world"),
    ],
)
def test_the_seam_cuts_a_repeat_and_doubled_whitespace(sent, chunks, joined):
    assert join(sent, *chunks) == joined


def test_text_after_the_first_held_characters_flows_at_once():
    seam = Seam("partial")
    assert seam.feed("x" * HOLD) == "x" * HOLD
    assert seam.feed("more") == "more"

"""Where a continuation joins the text already sent, so that none is sent twice.

A model that continues a prefill goes on mid-word; a model that answers after the partial
answer (no prefill, or an OpenAI-compatible target) often restates its last words first.
So the start of a continuation is held back (up to `HOLD` characters, or its end) and
cut where it repeats the end of what the client has: the longest such repeat of at least
`MIN_REPEAT` characters.  Whitespace at the seam is sent once.
"""

from __future__ import annotations

HOLD = 80
MIN_REPEAT = 8


class Seam:
    def __init__(self, sent: str) -> None:
        self._sent = sent
        self._held = ""
        self._joined = not sent  # nothing to join to: text passes straight through

    def feed(self, text: str) -> str:
        """What of `text` may go to the client now."""
        if self._joined:
            return text
        self._held += text
        return self._join() if len(self._held) >= HOLD else ""

    def flush(self) -> str:
        """What is still held back, at the end of the continuation."""
        return "" if self._joined else self._join()

    def _join(self) -> str:
        self._joined = True
        text, start, end = self._held, self._held.lstrip(), self._sent.rstrip()
        for k in range(min(len(start), len(end)), MIN_REPEAT - 1, -1):
            if end.endswith(start[:k]):
                text = start[k:]  # what follows the repeat
                break
        return text.lstrip() if self._sent[-1:].isspace() else text

"""Streaming detokenization: turn generated token ids into text as they come, in linear time.

Printing a generation token by token needs the text of every prefix. Decoding the whole list
again for every new token costs ``O(n)`` per token, ``O(n^2)`` in all (20,000 tokens: 2 * 10^8
token look-ups). `StreamingDetokenizer` decodes only a short window: the tokens since the last
*anchor*. When the window's text is all shown (it does not end in an unfinished multi-byte
character, which a byte-level decoder shows as the replacement character ``U+FFFD``) and holds at least
``window`` tokens, the window restarts from its last token, whose text is already shown. Keeping
that one token in the new window lets decoders whose output depends on the previous piece
(SentencePiece drops a leading space) see it.

The text produced is the same as the text the caller would get by decoding all ids at once and
printing the settled part of each prefix (what ``mlxt generate`` did before): the tests check it
for the character and byte-level BPE tokenizers on random ids.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"


class StreamingDetokenizer:
    """``add(token)`` returns the new text to print (maybe ``""``); ``finish()`` the rest."""

    def __init__(self, tokenizer, window: int = 16):
        self.tokenizer = tokenizer
        self.window = max(2, int(window))
        self.ids: list[int] = []  # the tokens since the anchor (the first one: already shown)
        self.shown = ""  # the part of decode(self.ids) already returned

    def add(self, token: int) -> str:
        self.ids.append(int(token))
        text = self.tokenizer.decode(self.ids)
        stable = text.rstrip(REPLACEMENT)  # an unfinished character waits for its next byte
        new = ""
        if len(stable) > len(self.shown) and stable.startswith(self.shown):
            new = stable[len(self.shown):]
            self.shown = stable
        if len(self.ids) >= self.window and text == self.shown:
            self._restart(text)
        return new

    def _restart(self, text: str) -> None:
        """Start the window again at its last token, if that token's text ends ``text``."""
        last = self.ids[-1:]
        tail = self.tokenizer.decode(last)
        if tail and REPLACEMENT not in tail and text.endswith(tail):
            self.ids, self.shown = last, tail

    def finish(self) -> str:
        """What is left once generation stops (an unfinished character, as ``U+FFFD``)."""
        text = self.tokenizer.decode(self.ids)
        rest = text[len(self.shown):] if text.startswith(self.shown) else ""
        self.ids, self.shown = [], ""
        return rest

"""``format=html``: translate the text between the tags of an HTML fragment and keep the markup.

The fragment is cut (with the standard library's `html.parser`) into markup and text runs; each
text run that holds more than blanks is translated, with its leading and trailing blanks kept,
and written back escaped. Text inside ``<script>``, ``<style>`` and ``<code>`` is left as it is.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

KEEP = ("script", "style", "code", "pre")


class _Cutter(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[bool, str]] = []  # (translatable, text or markup)
        self.open_kept = 0

    def handle_starttag(self, tag, attrs):
        self.parts.append((False, self.get_starttag_text()))
        if tag in KEEP:
            self.open_kept += 1

    def handle_startendtag(self, tag, attrs):
        self.parts.append((False, self.get_starttag_text()))

    def handle_endtag(self, tag):
        self.parts.append((False, f"</{tag}>"))
        if tag in KEEP and self.open_kept:
            self.open_kept -= 1

    def handle_data(self, data):
        self.parts.append((not self.open_kept and bool(data.strip()), data if not self.open_kept else html.escape(data, quote=False)))

    def handle_comment(self, data):
        self.parts.append((False, f"<!--{data}-->"))

    def handle_decl(self, decl):
        self.parts.append((False, f"<!{decl}>"))

    def handle_pi(self, data):
        self.parts.append((False, f"<?{data}>"))


def split_html(fragment: str) -> list[tuple[bool, str]]:
    """``[(translatable, piece)]`` whose markup pieces and escaped text pieces rebuild the fragment."""
    cutter = _Cutter()
    cutter.feed(fragment)
    cutter.close()
    return cutter.parts


def text_runs(fragment: str) -> list[str]:
    """The texts of ``fragment`` to translate, blanks trimmed."""
    return [piece.strip() for translatable, piece in split_html(fragment) if translatable]


def rebuild(fragment: str, translations: list[str]) -> str:
    """``fragment`` with its `text_runs` replaced by ``translations`` (in order)."""
    out, it = [], iter(translations)
    for translatable, piece in split_html(fragment):
        if translatable:
            lead = piece[: len(piece) - len(piece.lstrip())]
            trail = piece[len(piece.rstrip()):]
            out.append(lead + html.escape(next(it), quote=False) + trail)
        else:
            out.append(piece)
    return "".join(out)

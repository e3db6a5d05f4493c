"""Rule-based sentence splitting, for question -> answer-sentence pairs from SQuAD-style corpora
and for the zero-shot hygiene index (evaluation contexts split into sentences).
"""
from __future__ import annotations

import re

__all__ = ['split_sentences', 'answer_sentence']

_SENT_BREAK = re.compile(r'(?<=[.!?\u061f\u06d4\u0964\u0965])[\"\'\u201d\u2019)\]]*\s+|(?<=[\u3002\uff01\uff1f\uff1b])')


def split_sentences(text: str, lang: str, min_chars: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans ``[start, end)`` of ``text`` (rule-based; Thai splits at spaces).

    Fragments shorter than ``min_chars`` (default 20, Thai 40: its spaces also end phrases) are
    merged into a neighbouring span.
    """
    if min_chars is None:
        min_chars = 40 if lang == 'th' else 20
    pattern = re.compile(r'\s+') if lang == 'th' else _SENT_BREAK
    spans: list[tuple[int, int]] = []
    start = 0
    for match in pattern.finditer(text):
        end = match.start() if lang == 'th' else match.end()
        if end > start:
            spans.append((start, end))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and (len(text[merged[-1][0]:merged[-1][1]].strip()) < min_chars
                       or len(text[s:e].strip()) < min_chars):
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def answer_sentence(context: str, answer_start: int, answer_end: int, lang: str) -> str | None:
    """The sentence(s) of ``context`` that hold the answer span, or ``None`` when out of range."""
    if not 0 <= answer_start < len(context):
        return None
    spans = split_sentences(context, lang)
    first = next((i for i, (s, e) in enumerate(spans) if s <= answer_start < e), None)
    if first is None:
        return None
    last = first
    while last + 1 < len(spans) and spans[last][1] < answer_end:
        last += 1
    return context[spans[first][0]:spans[last][1]].strip()

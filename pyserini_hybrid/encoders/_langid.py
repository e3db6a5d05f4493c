"""Offline language identification for collections whose texts carry no language.

``py3langid`` (a maintained fork of langid.py, BSD): its naive-Bayes model over byte n-grams ships
inside the PyPI wheel (no download), it needs only numpy, classifies a sentence in well under a
millisecond, covers all eleven XQuAD-R languages, and can be restricted to the languages of a
collection (here: those the bias statistics were fitted for), which removes most confusions
between close languages outside that set. LAReQA texts carry their language and never need it.
"""
from __future__ import annotations

import functools
from typing import Sequence

__all__ = ['identify_languages']


@functools.lru_cache(maxsize=8)
def _identifier(langs: tuple[str, ...]):
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
    unknown = sorted(set(langs) - set(identifier.nb_classes))
    if unknown:
        from pyserini_hybrid.encoders._registry import EncoderError

        raise EncoderError(f"language identifier does not know {', '.join(unknown)}")
    identifier.set_languages(list(langs))
    return identifier


def identify_languages(texts: Sequence[str], langs: Sequence[str]) -> list[str]:
    """The most likely language of each text among ``langs`` (ISO 639-1 codes, e.g. ``'de'``)."""
    identifier = _identifier(tuple(sorted(set(langs))))
    return [identifier.classify(text)[0] for text in texts]

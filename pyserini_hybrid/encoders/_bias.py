"""Training-free language-bias correction of a dense encoder's vectors.

A multilingual encoder puts a language-specific offset into every vector, so in a pooled
multilingual corpus a query prefers documents of its own language over better answers in others
(LAReQA's Multi setting; "language bias"). The corrections here remove that offset with statistics
fitted once per model from *unlabeled* monolingual text of each language (no queries, no labels):

``shift``
    documents only: ``d - mean_doc[lang(d)]``. Every document of one language moves by the same
    vector, so a query's scores against a one-language corpus all change by one constant: Mono and
    Cross rankings cannot change, and search skips the shift there (bit-identical rankings).
``center``
    queries and documents: ``x - mean[side, lang(x)]``, then L2-normalised (per-language centring).
``lir``
    queries and documents: remove each language's top ``rank`` principal directions (LIR, Yang et al.
    2021, "A simple and effective method to remove language identity"), then normalise.
``lsar``
    queries and documents: project out a ``rank``-dimensional language subspace spanned by the
    centred per-language means (LSAR, Xie et al. 2022); one projection for every text, so it needs
    no language label at search time.

Statistics (:class:`BiasStats`) are per language and per side (query / passage prefix), saved as one
small ``.npz`` beside the model: inside a trained model's directory, or under the cache for named
models (see :func:`bias_stats_for`). Fitting is deterministic: fitted twice, they are identical.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from pyserini_hybrid.encoders._registry import EncoderError

if TYPE_CHECKING:  # pragma: no cover
    from pyserini_hybrid.datasets import Pool
    from pyserini_hybrid.encoders._model import Encoder

__all__ = ['BIAS_METHODS', 'BIAS_SOURCES', 'DEFAULT_RANK', 'METHOD_SIDES', 'STATS_VERSION', 'BiasStats',
           'BiasCorrection', 'fit_bias_stats', 'parse_bias_method', 'bias_texts', 'bias_stats_path', 'bias_stats_for', 'load_bias_correction']

BIAS_METHODS = ('none', 'shift', 'center', 'lir', 'lsar')
# Where the unlabeled text comes from: NTREX news sentences of the training side (default), or the
# documents of the collection being searched (as a user's own index would allow).
BIAS_SOURCES = ('ntrex', 'docs')
# Subspace rank per method, chosen on the NTREX validation benchmark (encoders/README.md).
DEFAULT_RANK = {'lir': 1, 'lsar': 16}
STATS_VERSION = 1
TEXTS_PER_LANGUAGE = 300
MAX_COMPONENTS = 16
SIDES = ('query', 'passage')
# The sides whose statistics each method reads: shift only moves documents, so fitting for it embeds
# the fitting text once (passage side), not twice.
METHOD_SIDES = {'none': (), 'shift': ('passage',), 'center': SIDES, 'lir': SIDES, 'lsar': SIDES}


def parse_bias_method(value: str) -> tuple[str, int | None]:
    """``'lsar:8'`` -> ``('lsar', 8)``, ``'shift'`` -> ``('shift', None)``; bad values: one-line error."""
    method, sep, rank = value.partition(':')
    if method not in BIAS_METHODS:
        raise EncoderError(f"unknown bias correction {method!r}; choices: {', '.join(BIAS_METHODS)}")
    if sep and (method not in ('lir', 'lsar') or not rank.isdigit()):
        raise EncoderError(f"bias correction {value!r}: only lir and lsar take a rank, as METHOD:N (e.g. lsar:8)")
    return method, int(rank) if sep else None


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


@dataclass
class BiasStats:
    """Per-language statistics of one encoder's vectors.

    Attributes
    ----------
    langs : tuple of str
    mean : dict
        ``{side: float32 [n_langs, dim]}``, side ``'query'`` or ``'passage'`` (only the fitted sides).
    components : dict
        ``{side: float32 [n_langs, k, dim]}``: each language's top right singular vectors
        (uncentred, as LIR takes them), ``k <= MAX_COMPONENTS``.
    meta : dict
        ``encoder`` (name), ``fingerprint`` (model weights), ``source``, ``texts_per_language``,
        ``version``.
    """
    langs: tuple[str, ...]
    mean: dict[str, np.ndarray]
    components: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    @property
    def sides(self) -> tuple[str, ...]:
        """The sides fitted (:data:`SIDES` order)."""
        return tuple(s for s in SIDES if s in self.mean)

    def index(self, langs: Sequence[str]) -> np.ndarray:
        """Row of each language; a language without statistics is a one-line :class:`EncoderError`."""
        where = {l: i for i, l in enumerate(self.langs)}
        missing = sorted({l for l in langs if l not in where})
        if missing:
            raise EncoderError(f"bias statistics have no language {', '.join(map(repr, missing))} (fitted for "
                               f"{', '.join(self.langs)} from {self.meta.get('source', '?')}); refit them with "
                               f"text in that language (python -m pyserini_hybrid.encoders fit-bias --help)")
        return np.fromiter((where[l] for l in langs), dtype=np.int64, count=len(langs))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the statistics as one ``.npz`` (atomically)."""
        from pyserini_hybrid._io import atomic_write

        arrays = {f'{kind}_{side}': getattr(self, kind)[side] for kind in ('mean', 'components')
                  for side in self.sides}
        arrays['langs'] = np.array(self.langs)
        arrays['meta'] = np.array(json.dumps(self.meta, sort_keys=True))
        path = Path(path)
        with atomic_write(path, 'wb') as handle:
            np.savez(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> 'BiasStats':
        """Read statistics written by :meth:`save`; a bad file is a one-line :class:`EncoderError`."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data['meta']))
                sides = [s for s in SIDES if f'mean_{s}' in data.files]
                if not sides:
                    raise KeyError('mean_passage')
                stats = cls(langs=tuple(str(l) for l in data['langs']),
                            mean={s: data[f'mean_{s}'].astype(np.float32) for s in sides},
                            components={s: data[f'components_{s}'].astype(np.float32) for s in sides}, meta=meta)
        except FileNotFoundError:
            raise EncoderError(f"bias statistics not found: {path}") from None
        except (OSError, KeyError, ValueError) as exc:
            raise EncoderError(f"{path}: not a bias statistics file ({type(exc).__name__}: {exc})") from None
        if meta.get('version') != STATS_VERSION:
            raise EncoderError(f"{path}: bias statistics version {meta.get('version')!r}, expected {STATS_VERSION}")
        return stats


def fit_bias_stats(encoder: 'Encoder', texts: Mapping[str, Sequence[str]], source: str,
                   n_components: int = MAX_COMPONENTS, sides: Sequence[str] = SIDES) -> BiasStats:
    """Fit :class:`BiasStats` from unlabeled text of each language, embedded as queries and/or passages.

    Parameters
    ----------
    encoder
        The :class:`~pyserini_hybrid.encoders.Encoder` whose vectors are to be corrected.
    texts
        ``{lang: [text, ...]}``: monolingual text, no labels needed.
    source
        Recorded in the metadata (e.g. ``'ntrex'``).
    n_components
        Singular vectors kept per language and side.
    sides
        Which of ``'query'`` / ``'passage'`` to embed the text as (:data:`METHOD_SIDES` says which
        each method reads).
    """
    sides = tuple(s for s in SIDES if s in sides)
    if not sides:
        raise EncoderError(f"no side to fit bias statistics for; choose from {', '.join(SIDES)}")
    langs = tuple(sorted(texts))
    if not langs:
        raise EncoderError("no text to fit bias statistics from")
    empty = [l for l in langs if not texts[l]]
    if empty:
        raise EncoderError(f"no text to fit bias statistics for language {', '.join(empty)}")
    mean: dict[str, list[np.ndarray]] = {s: [] for s in sides}
    comps: dict[str, list[np.ndarray]] = {s: [] for s in sides}
    k = min(n_components, min(len(texts[l]) for l in langs))
    for lang in langs:
        for side in sides:
            embed = encoder.encode_queries if side == 'query' else encoder.encode_passages
            x = embed(list(texts[lang])).astype(np.float64)
            mean[side].append(x.mean(axis=0))
            _, _, vt = np.linalg.svd(x, full_matrices=False)
            # A singular vector's sign is arbitrary; fix it so that refits are identical.
            vt = vt[:k] * np.where(vt[:k].sum(axis=1, keepdims=True) < 0, -1.0, 1.0)
            comps[side].append(vt)
    meta = {'encoder': encoder.spec.name, 'fingerprint': encoder.fingerprint, 'source': source,
            'texts_per_language': {l: len(texts[l]) for l in langs}, 'version': STATS_VERSION}
    return BiasStats(langs=langs, mean={s: np.stack(mean[s]).astype(np.float32) for s in sides},
                     components={s: np.stack(comps[s]).astype(np.float32) for s in sides}, meta=meta)


def _sample(items: Sequence[str], n: int, salt: str) -> list[str]:
    """Up to ``n`` distinct texts, chosen by a hash (stable across runs and file orders)."""
    unique = sorted({t.strip() for t in items if t and t.strip()})
    keyed = sorted(unique, key=lambda t: hashlib.sha256(f'{salt}\0{t}'.encode('utf-8')).digest())
    return keyed[:n]


def bias_texts(source: str, langs: Sequence[str], *, per_language: int = TEXTS_PER_LANGUAGE,
               pool: 'Pool | None' = None, train_dir: str | os.PathLike | None = None) -> dict[str, list[str]]:
    """Unlabeled text per language for fitting.

    ``'ntrex'``: NTREX sentences of the documents that are *not* held out for validation;
    ``'docs'``: the documents of ``pool`` (its candidates, never its queries).
    """
    if source == 'ntrex':
        from pyserini_hybrid.datasets import default_train_dir, is_validation_document
        from pyserini_hybrid.datasets._ntrex import read_ntrex

        doc_ids, text = read_ntrex(Path(train_dir or default_train_dir()) / 'ntrex', langs)
        return {l: _sample([t[i] for i, d in enumerate(doc_ids) if not is_validation_document(d)], per_language, l)
                for l, t in text.items()}
    if source == 'docs':
        if pool is None:
            raise EncoderError("bias source 'docs' needs the collection whose documents are indexed")
        by_lang: dict[str, list[str]] = {}
        for doc in pool.docs:
            by_lang.setdefault(doc.lang, []).append(doc.text)
        return {l: _sample(by_lang[l], per_language, l) for l in langs if l in by_lang}
    raise EncoderError(f"unknown bias source {source!r}; choices: {', '.join(BIAS_SOURCES)}")


def _model_dir(encoder: 'Encoder') -> Path | None:
    from pyserini_hybrid.encoders._registry import SPEC_FILE

    path = Path(encoder.spec.model) if encoder.spec.model else None
    return path if path is not None and (path / SPEC_FILE).is_file() and os.access(path, os.W_OK) else None


def bias_stats_path(encoder: 'Encoder', source: str) -> Path:
    """Where an encoder's statistics live: its own model directory when it is a writable trained
    model, else ``<cache>/bias/``; the name carries the source, the model fingerprint and the version."""
    from pyserini_hybrid.encoders._offline import cache_dir

    tag = f'bias-{source}-{encoder.fingerprint[:16]}-v{STATS_VERSION}.npz'
    here = _model_dir(encoder)
    return (here / tag) if here is not None else cache_dir() / 'bias' / tag


def bias_stats_for(encoder: 'Encoder', source: str = 'ntrex', *, langs: Sequence[str] | None = None,
                   pool: 'Pool | None' = None, train_dir: str | os.PathLike | None = None, refit: bool = False,
                   sides: Sequence[str] = SIDES, log=None) -> BiasStats:
    """The encoder's saved statistics for ``source``, fitted and saved on first use.

    ``langs`` defaults to the pool's languages (``docs``) or the eleven XQuAD-R languages (``ntrex``).
    A saved file that lacks a wanted language is refitted; one that lacks a wanted side (fitted for
    ``shift`` only) gets that side added from the same texts.
    """
    from pyserini_hybrid.datasets._ntrex import VALIDATION_LANGUAGES

    langs = tuple(langs or (sorted({d.lang for d in pool.docs}) if pool is not None else VALIDATION_LANGUAGES))
    if source == 'docs' and pool is not None:
        source = f'docs-{pool.collection}'
        kind = 'docs'
    else:
        kind = source
    path = bias_stats_path(encoder, source)
    kept = None
    if path.is_file() and not refit:
        kept = BiasStats.load(path)
        if not set(langs) <= set(kept.langs):
            kept = None
        elif set(sides) <= set(kept.sides):
            return kept
    fit_langs = kept.langs if kept is not None else langs
    fit_sides = tuple(s for s in sides if kept is None or s not in kept.sides)
    if log is not None:
        log(f'fitting {"+".join(fit_sides)} bias statistics of {encoder.spec.name} from {source} '
            f'({", ".join(fit_langs)}) -> {path}')
    stats = fit_bias_stats(encoder, bias_texts(kind, fit_langs, pool=pool, train_dir=train_dir), source,
                           sides=fit_sides)
    if kept is not None:   # same texts (a stable sample), the other side: merge into one file
        stats.mean.update(kept.mean)
        stats.components.update(kept.components)
    path.parent.mkdir(parents=True, exist_ok=True)
    stats.save(path)
    return stats


class BiasCorrection:
    """One correction method with its statistics, applied to query and document vectors.

    Parameters
    ----------
    method : str
        One of :data:`BIAS_METHODS`.
    stats : BiasStats, optional
        Required by every method except ``'none'``.
    rank : int, optional
        Subspace rank of ``lir`` / ``lsar`` (default :data:`DEFAULT_RANK`).
    """

    def __init__(self, method: str = 'none', stats: BiasStats | None = None, rank: int | None = None) -> None:
        if method not in BIAS_METHODS:
            raise EncoderError(f"unknown bias correction {method!r}; choices: {', '.join(BIAS_METHODS)}")
        if method != 'none' and stats is None:
            raise EncoderError(f"bias correction {method!r} needs fitted statistics")
        missing = [s for s in METHOD_SIDES[method] if s not in stats.sides] if stats is not None else []
        if missing:
            raise EncoderError(f"bias correction {method!r} needs {' and '.join(missing)}-side statistics, fitted "
                               f"for {', '.join(stats.sides)} only; refit them (python -m pyserini_hybrid.encoders "
                               f"fit-bias --help)")
        self.method = method
        self.stats = stats
        self.rank = int(rank if rank is not None else DEFAULT_RANK.get(method, 0))
        if method in ('lir', 'lsar'):
            # lsar: 2 sides x L language means, each side centred, span at most 2 (L - 1) directions
            limit = stats.components['passage'].shape[1] if method == 'lir' else 2 * (len(stats.langs) - 1)
            if not 1 <= self.rank <= limit:
                raise EncoderError(f"bias rank for {method} must be in 1..{limit}, got {self.rank}")
        self._subspace = self._lsar_subspace() if method == 'lsar' else None

    def __repr__(self) -> str:
        return f'BiasCorrection({self.describe()!r})'

    def describe(self) -> str:
        """E.g. ``'lsar (rank 8; ntrex, 300 texts/language)'``: what reports print."""
        if self.method == 'none':
            return 'none'
        rank = f'rank {self.rank}; ' if self.method in ('lir', 'lsar') else ''
        counts = set(self.stats.meta.get('texts_per_language', {}).values())
        n = f', {max(counts)} texts/language' if counts else ''
        return f"{self.method} ({rank}{self.stats.meta.get('source', '?')}{n})"

    def to_dict(self) -> dict:
        return {'method': self.method, 'rank': self.rank if self.method in ('lir', 'lsar') else None,
                'source': self.stats.meta.get('source') if self.stats else None,
                'fingerprint': self.stats.meta.get('fingerprint') if self.stats else None}

    @property
    def needs_query_langs(self) -> bool:
        return self.method in ('center', 'lir')

    @property
    def needs_doc_langs(self) -> bool:
        return self.method in ('shift', 'center', 'lir')

    def preserves_ranking(self, doc_langs: Sequence[str]) -> bool:
        """Whether the correction cannot change any ranking over a corpus of these languages."""
        return self.method == 'none' or (self.method == 'shift' and len(set(doc_langs)) == 1)

    def _lsar_subspace(self) -> np.ndarray:
        means = [self.stats.mean[s].astype(np.float64) for s in SIDES]
        centred = np.concatenate([m - m.mean(axis=0, keepdims=True) for m in means])
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return vt[:self.rank]

    def _apply(self, x: np.ndarray, langs: Sequence[str] | None, side: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.method == 'none' or (self.method == 'shift' and side == 'query'):
            return x
        if self.method == 'lsar':
            u = self._subspace
            return _unit(x - (x @ u.T) @ u)
        if langs is None:
            raise EncoderError(f"bias correction {self.method!r} needs the language of every {side} text")
        if len(langs) != len(x):
            raise EncoderError(f"got {len(langs)} languages for {len(x)} {side} vectors")
        rows = self.stats.index(langs)
        if self.method == 'shift':
            return (x - self.stats.mean['passage'][rows]).astype(np.float32)
        if self.method == 'center':
            return _unit(x - self.stats.mean[side][rows])
        comps = self.stats.components[side][:, :self.rank]       # lir
        out = x.copy()
        for r in np.unique(rows):
            sel = rows == r
            c = comps[r]
            out[sel] -= (x[sel] @ c.T) @ c
        return _unit(out)

    def queries(self, vectors: np.ndarray, langs: Sequence[str] | None = None) -> np.ndarray:
        """Corrected query vectors (``langs`` needed by ``center`` and ``lir``)."""
        return self._apply(vectors, langs, 'query')

    def docs(self, vectors: np.ndarray, langs: Sequence[str] | None = None) -> np.ndarray:
        """Corrected document vectors (``langs`` needed by every method but ``lsar``)."""
        return self._apply(vectors, langs, 'passage')

    def apply_pool(self, pool: 'Pool', q_emb: np.ndarray, d_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Corrected vectors of a whole pool, languages taken from its queries and documents."""
        return (self.queries(q_emb, [q.lang for q in pool.queries]),
                self.docs(d_emb, [d.lang for d in pool.docs]))


def load_bias_correction(encoder: 'Encoder', method: str = 'none', *, rank: int | None = None,
                         source: str = 'ntrex', pool: 'Pool | None' = None, langs: Sequence[str] | None = None,
                         train_dir: str | os.PathLike | None = None, log=None) -> BiasCorrection:
    """A :class:`BiasCorrection` for ``encoder``, its statistics loaded or fitted on first use."""
    if method not in BIAS_METHODS:
        raise EncoderError(f"unknown bias correction {method!r}; choices: {', '.join(BIAS_METHODS)}")
    if source not in BIAS_SOURCES:
        raise EncoderError(f"unknown bias source {source!r}; choices: {', '.join(BIAS_SOURCES)}")
    if method == 'none':
        return BiasCorrection('none')
    stats = bias_stats_for(encoder, source, langs=langs, pool=pool, train_dir=train_dir,
                           sides=METHOD_SIDES[method], log=log)
    return BiasCorrection(method, stats, rank)

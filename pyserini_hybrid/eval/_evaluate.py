"""Score TREC run files of LAReQA settings, or of any collection's one setting, against their qrels.

A system is given as one run file (one setting) or a directory of ``--all-settings`` output: one
file per setting, named ``pyserini_hybrid.datasets.run_filename(dataset_id)``. A
:class:`~pyserini_hybrid.datasets.Collection` that is not LAReQA has one setting, scored from one file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from pyserini_hybrid._trec import Run, read_run
from pyserini_hybrid.eval._bias import run_rank_distances
from pyserini_hybrid.eval._metrics import AGGREGATE_KINDS, MEASURES, SettingResult, per_query_metrics

if TYPE_CHECKING:
    from pyserini_hybrid.datasets import Pool, Setting

__all__ = ['RunMismatchError', 'evaluate_run', 'evaluate_run_file', 'find_run_files', 'evaluate_system',
           'check_trec_eval']


class RunMismatchError(ValueError):
    """A run whose query or document ids do not belong to the setting it is scored on."""


def _find_line(path: Path, qid: str, docid: str | None = None) -> int | None:
    """First line of ``path`` with that query (and doc) id: only used to word an error."""
    with path.open(encoding='utf-8') as handle:
        for lineno, line in enumerate(handle, start=1):
            fields = line.split()
            if fields and fields[0] == qid and (docid is None or (len(fields) > 2 and fields[2] == docid)):
                return lineno
    return None


def _where(path: Path | None, name: str, qid: str, docid: str | None = None) -> str:
    if path is None:
        return name
    lineno = _find_line(path, qid, docid)
    return f'{path}:{lineno}' if lineno else str(path)


def _as_setting(pool: 'Pool', setting: 'Setting | str') -> 'Setting':
    from pyserini_hybrid.datasets import Collection, parse_dataset_id

    if not isinstance(setting, str):
        return setting
    # a Collection names its own settings; a LAReQA pool's are the dataset ids
    return pool.setting(setting) if isinstance(pool, Collection) else parse_dataset_id(setting)


def evaluate_run(pool: 'Pool', setting: 'Setting | str', run: Run, *, measures: Sequence[str] = MEASURES,
                 name: str = '<run>', path: str | os.PathLike | None = None) -> SettingResult:
    """Per-query metrics (and, for Multi, rank distances) of one run on one setting.

    Parameters
    ----------
    pool
        The LAReQA pool (``pyserini_hybrid.datasets.load_pool``) or any
        :class:`~pyserini_hybrid.datasets.Collection`; qrels come from ``pool.qrels_for``.
    setting
        A :class:`~pyserini_hybrid.datasets.Setting` or a dataset id (a collection's setting name).
    run
        ``{qid: [(docid, score), ...]}``.
    measures
        ir_measures names (default AP, R@1, R@10, nDCG@10).
    name, path
        How errors name the run; with ``path`` they also give the line.

    Raises
    ------
    RunMismatchError
        An empty run, a query id that is not one of the setting's queries (for a collection: not in
        its topics), or a doc id outside the setting's corpus (one line, naming the file and line).
        A collection's topic without judgements is not scored (as trec_eval does).
    """
    setting = _as_setting(pool, setting)
    path = Path(path) if path is not None else None
    label = str(path) if path is not None else name
    qrels = pool.qrels_for(setting)
    if not any(run.values()):
        raise RunMismatchError(f"{label}: run is empty (no result lines) for {setting.dataset_id}")
    lareqa = setting.kind in AGGREGATE_KINDS
    # LAReQA: a setting's queries are its judged ones; a collection's are its topics
    topics = {pool.queries[i].query_id for i in pool.query_indices(setting)}
    collection_queries = pool.qrels
    for qid in run:
        if qid not in topics:
            why = ('a query of another setting: wrong run file for this setting?' if qid in collection_queries
                   else f'not a query of lareqa/{pool.collection}') if lareqa else 'not in its topics'
            raise RunMismatchError(f"{_where(path, name, qid)}: query {qid!r} is not a query of "
                                   f"{setting.dataset_id} ({why})")
    corpus = {pool.docs[j].doc_id for j in pool.doc_indices(setting)}
    for qid, hits in run.items():
        for docid, _ in hits:
            if docid not in corpus:
                where = f" (languages {','.join(setting.doc_langs)})" if lareqa else ''
                raise RunMismatchError(f"{_where(path, name, qid, docid)}: doc {docid!r} is not in the corpus "
                                       f"of {setting.dataset_id}{where}")
    per_query = per_query_metrics(qrels, run, measures)
    distances, bounded = (run_rank_distances(run, qrels) if setting.kind == 'multi' else (None, 0))
    query_langs = {pool.queries[i].query_id: pool.queries[i].lang for i in pool.query_indices(setting)
                   if pool.queries[i].query_id in qrels}
    return SettingResult(
        dataset_id=setting.dataset_id, kind=setting.kind, query_lang=setting.query_lang,
        doc_langs=tuple(setting.doc_langs), n_docs=len(corpus), depth=max(len(h) for h in run.values()),
        per_query=per_query, query_langs=query_langs,
        missing_queries=sum(1 for qid in qrels if not run.get(qid)),
        rank_distance=distances, rank_distance_bounded=bounded, source=label,
        full_pool=all(len(run.get(qid, ())) >= len(corpus) for qid in qrels))


def evaluate_run_file(pool: 'Pool', setting: 'Setting | str', path: str | os.PathLike, *,
                      measures: Sequence[str] = MEASURES) -> SettingResult:
    """Read ``path`` strictly (:func:`pyserini_hybrid._trec.read_run`) and :func:`evaluate_run` it."""
    return evaluate_run(pool, setting, read_run(path), measures=measures, path=path)


def find_run_files(dataset_id: str, path: str | os.PathLike) -> dict[str, Path]:
    """Map each setting to its run file.

    Parameters
    ----------
    dataset_id
        A collection id (``lareqa/xquad-r``) or any setting id.
    path
        A run file (scored as ``dataset_id``), or a directory of ``--all-settings`` output: with a
        collection id every setting whose file is there; with a Mono/Cross id only that setting.

    Raises
    ------
    FileNotFoundError
        ``path`` is missing, or the directory holds none of the expected files.
    """
    from pyserini_hybrid.datasets import list_settings, parse_dataset_id, run_filename

    setting = parse_dataset_id(dataset_id)
    path = Path(path)
    if path.is_file():
        return {setting.dataset_id: path}
    if not path.is_dir():
        raise FileNotFoundError(f"no such run file or directory: {path}")
    wanted = list_settings(setting.collection) if setting.kind == 'multi' else [setting]
    found = {s.dataset_id: path / run_filename(s.dataset_id) for s in wanted}
    found = {d: p for d, p in found.items() if p.is_file()}
    if not found:
        example = run_filename(wanted[0].dataset_id)
        raise FileNotFoundError(f"{path}: no run file for {dataset_id} (expected names like {example})")
    return found


_FORKED_POOL: 'Pool | None' = None  # the parent's pool, inherited by forked workers


def _evaluate_one(args: tuple[str, str, tuple[str, ...]]) -> SettingResult:
    dataset_id, path, measures = args
    return evaluate_run_file(_FORKED_POOL, dataset_id, path, measures=measures)


def evaluate_system(pool: 'Pool', files: Mapping[str, str | os.PathLike], *, measures: Sequence[str] = MEASURES,
                    threads: int = 1) -> dict[str, SettingResult]:
    """Evaluate one system's run files, ``{dataset_id: path}`` (see :func:`find_run_files`).

    Settings with no query (possible for MLQA-R Cross pairs) are left out: they have no unit.

    Parameters
    ----------
    threads
        Worker processes reading files in parallel (reading TREC text dominates the time).
    """
    global _FORKED_POOL
    # A setting without queries (an MLQA-R Cross pair may share no question) has nothing to score.
    jobs = [(d, str(p), tuple(measures)) for d, p in sorted(files.items()) if len(pool.query_indices(d))]
    if threads <= 1 or len(jobs) <= 1:
        results: Iterable[SettingResult] = (evaluate_run_file(pool, d, p, measures=measures) for d, p, _ in jobs)
        return {r.dataset_id: r for r in results}
    import concurrent.futures
    import multiprocessing

    # fork: workers inherit the parsed pool and import nothing again.
    _FORKED_POOL = pool
    try:
        with concurrent.futures.ProcessPoolExecutor(
                threads, mp_context=multiprocessing.get_context('fork')) as ex:
            return {r.dataset_id: r for r in ex.map(_evaluate_one, jobs)}
    finally:
        _FORKED_POOL = None


def check_trec_eval(pool: 'Pool', setting: 'Setting | str', run_path: str | os.PathLike, ap: float, *,
                    system: str = '', tolerance: float = 1e-4, timeout: float = 600) -> dict:
    """Score one run file with Pyserini's trec_eval CLI and compare its ``map`` with ``ap``.

    Runs ``python -m pyserini_hybrid.pyserini pyserini.eval.trec_eval -c -m map QRELS RUN`` (``-c``:
    a query absent from the run counts 0, as here) on the setting's qrels written to a temporary file.

    Returns
    -------
    dict
        ``system``, ``setting``, ``trec_eval_map`` (4 decimals, as trec_eval prints it),
        ``ir_measures_map`` (``ap``), ``abs_diff`` and ``agree`` (``abs_diff <= tolerance``).

    Raises
    ------
    RuntimeError
        trec_eval failed or printed no ``map`` line.
    """
    import re
    import subprocess
    import sys
    import tempfile

    from pyserini_hybrid._trec import write_qrels

    setting = _as_setting(pool, setting)
    with tempfile.TemporaryDirectory(prefix='pyserini_hybrid_eval_') as tmp:
        qrels = write_qrels(pool.qrels_for(setting), Path(tmp) / 'qrels.txt')
        cmd = [sys.executable, '-m', 'pyserini_hybrid.pyserini', 'pyserini.eval.trec_eval', '-c', '-m', 'map',
               str(qrels), str(run_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    match = re.search(r'^map\s+all\s+([0-9.]+)\s*$', proc.stdout, flags=re.M)
    if proc.returncode != 0 or match is None:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ['no output']
        raise RuntimeError(f"trec_eval failed on {run_path} (exit {proc.returncode}): {tail[0]}")
    value = float(match.group(1))
    diff = abs(value - ap)
    return {'system': system, 'setting': setting.dataset_id, 'run': str(run_path), 'trec_eval_map': value,
            'ir_measures_map': ap, 'abs_diff': diff, 'agree': diff <= tolerance}

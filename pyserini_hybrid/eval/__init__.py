"""Evaluation of LAReQA runs: per-setting metrics, Mono/Cross/Multi aggregates, language bias,
paired significance, and a markdown/JSON report with figures; and of runs on any other collection
(:func:`pyserini_hybrid.datasets.load_collection`): its one setting through the same metrics,
exact mode, significance and report code.

Command line::

    python -m pyserini_hybrid.eval --dataset lareqa/xquad-r \\
        --runs bm25=runs/bm25 me5=runs/me5 fusion=runs/fusion --output-dir reports/xquad-r
    python -m pyserini_hybrid.eval --dataset corpus/ --topics topics.tsv --qrels qrels.txt \\
        --runs bm25=run.bm25.trec dense=run.dense.trec --output-dir reports/corpus

Python::

    from pyserini_hybrid.datasets import load_pool
    from pyserini_hybrid.eval import evaluate_system, find_run_files, build_report, write_report
    pool = load_pool('xquad-r')
    bm25 = evaluate_system(pool, find_run_files('lareqa/xquad-r', 'runs/bm25'))
    write_report(build_report('lareqa/xquad-r', {'bm25': bm25}), 'reports/xquad-r')

Metric values come from ``ir_measures`` with the pytrec_eval provider (trec_eval's code), or,
in exact mode (:func:`exact_scores`), from the full score matrix with the same definitions.
"""
from pyserini_hybrid.eval._bias import MISSING_RANK_RULE, rank_distance, relevant_ranks, run_rank_distances
from pyserini_hybrid.eval._evaluate import (RunMismatchError, check_trec_eval, evaluate_run, evaluate_run_file,
                                            evaluate_system, find_run_files)
from pyserini_hybrid.eval._exact import exact_from_encoder, exact_scores, exact_with_corrections, relevant_ranks_matrix
from pyserini_hybrid.eval._metrics import (AGGREGATE_KINDS, MEASURES, MISSING_RULE, PRIMARY, TIE_RULE, SettingResult,
                                           aggregate, aggregate_units, metrics_from_ranks, per_query_metrics,
                                           trec_eval_order)
from pyserini_hybrid.eval._report import build_report, render_markdown, write_report
from pyserini_hybrid.eval._significance import bootstrap_ci, compare, holm, paired_t_test, randomization_test

__all__ = ['AGGREGATE_KINDS', 'MEASURES', 'MISSING_RANK_RULE', 'MISSING_RULE', 'PRIMARY', 'TIE_RULE',
           'RunMismatchError', 'SettingResult', 'aggregate', 'aggregate_units', 'bootstrap_ci', 'build_report',
           'check_trec_eval', 'compare', 'evaluate_run', 'evaluate_run_file', 'evaluate_system',
           'exact_from_encoder', 'exact_scores', 'exact_with_corrections', 'find_run_files', 'holm', 'metrics_from_ranks',
           'paired_t_test', 'per_query_metrics', 'randomization_test', 'rank_distance', 'relevant_ranks',
           'relevant_ranks_matrix', 'render_markdown', 'run_rank_distances', 'trec_eval_order', 'write_report']

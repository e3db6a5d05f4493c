"""Experiments: arms x seeds trained with one budget, evaluated on XQuAD-R (and MLQA-R), one report.

Command line::

    python -m pyserini_hybrid.experiment experiments/seed-question.yaml

Python::

    from pyserini_hybrid.experiment import load_config, run_experiment
    report = run_experiment(load_config('experiments/seed-question.yaml'))
    print('\\n'.join(report['answer']))

The arms (:data:`ARMS`) answer the project's seed question: does combining hybrid batches with
instruction fine-tuning improve zero-shot cross-lingual retrieval over hybrid batches alone, and
over instruction tuning alone? A finished unit (arm x seed) is never trained or evaluated again.
"""
from pyserini_hybrid.experiment._config import (ARMS, DEFAULT_COMPARISONS, Budget, EvalOptions, ExperimentConfig,
                                                ExperimentError, InstructionOptions, ReportOptions, load_config,
                                                parse_config)
from pyserini_hybrid.experiment._report import (QUESTION, build_experiment_report, render_experiment_markdown,
                                                write_experiment_report)
from pyserini_hybrid.experiment._runner import (DONE_FILE, Unit, arm_recipes, available_collections, evaluate_model,
                                                load_unit_results, plan, recipe_yaml, results_path, run_units)
from pyserini_hybrid.experiment._experiment import run_experiment

__all__ = ['ARMS', 'DEFAULT_COMPARISONS', 'DONE_FILE', 'QUESTION', 'Budget', 'EvalOptions', 'ExperimentConfig',
           'ExperimentError', 'InstructionOptions', 'ReportOptions', 'Unit', 'arm_recipes', 'available_collections',
           'build_experiment_report', 'evaluate_model', 'load_config', 'load_unit_results', 'parse_config', 'plan',
           'recipe_yaml', 'render_experiment_markdown', 'results_path', 'run_experiment', 'run_units', 'write_experiment_report']

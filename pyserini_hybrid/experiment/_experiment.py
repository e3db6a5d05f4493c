"""The whole experiment: run (or resume) the units, then report on every finished one.

Kept apart from :mod:`._runner` (which trains and evaluates units) and :mod:`._report` (which reads
finished units) so that neither of those imports the other's caller: the dependency runs one way,
``_experiment -> _report -> _runner``.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

from pyserini_hybrid.experiment._config import ExperimentConfig
from pyserini_hybrid.experiment._report import build_experiment_report, write_experiment_report
from pyserini_hybrid.experiment._runner import _Log, run_units

__all__ = ['run_experiment']


def run_experiment(config: ExperimentConfig, *, train_dir: str | os.PathLike | None = None,
                   device: str | None = None, progress: bool = False, keep_models: bool = False,
                   report_only: bool = False, only_arms: Sequence[str] | None = None,
                   only_seeds: Sequence[int] | None = None, log: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) every unit of ``config``, then write the report; returns the report dict.

    Parameters
    ----------
    config : ExperimentConfig
    train_dir : path, optional
        Training corpora folder (default ``$PYSERINI_HYBRID_TRAIN_DATA`` or ../shared/data/train).
    device : str, optional
        Training device (``'cpu'`` forces the CPU).
    progress : bool
        Show the trainer's progress bars.
    keep_models : bool
        Keep each trained model after its evaluation (its ``recipe.yaml`` re-makes it otherwise).
    report_only : bool
        Train and evaluate nothing: report on the units already finished.
    only_arms : sequence of str, optional
        Run only these arms now; the report covers every finished unit.
    only_seeds : sequence of int, optional
        Run only these seeds now (the base arm, which has none, always runs), e.g. one seed of every arm
        first, so that a session cut short still answers the question at one seed.
    log : callable, optional
        Receives progress lines (default: stderr).

    Raises
    ------
    ExperimentError
        See :func:`pyserini_hybrid.experiment._runner.run_units`.
    """
    collections = run_units(config, train_dir=train_dir, device=device, progress=progress,
                            keep_models=keep_models, report_only=report_only, only_arms=only_arms,
                            only_seeds=only_seeds, log=log)
    report = build_experiment_report(config, collections)
    if report['collections'] or not report_only:
        paths = write_experiment_report(report, config.output_dir)
        _Log(log)(f"report: {', '.join(str(p) for p in paths)}")
    return report

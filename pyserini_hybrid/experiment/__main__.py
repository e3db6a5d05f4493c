"""Run an experiment: train every arm x seed with one budget, evaluate, write one report.

Usage::

    python -m pyserini_hybrid.experiment experiments/seed-question.yaml
    python -m pyserini_hybrid.experiment experiments/seed-question.yaml --dry-run      # the plan only
    python -m pyserini_hybrid.experiment experiments/seed-question.yaml --report-only  # finished units only

Resumable: run the same command again after an interruption; finished units (a ``done.json``
beside their results) are skipped, an interrupted training run continues from its checkpoint.
The report lands in ``<output>/report.md`` and ``report.json``.
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m pyserini_hybrid.experiment', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='\n'.join(__doc__.split('\n')[1:]))
    parser.add_argument('config', help='experiment YAML file (e.g. experiments/seed-question.yaml)')
    parser.add_argument('--output', default=None, help="output folder (default: the config's 'output', else "
                                                       "reports/experiments/<name>)")
    parser.add_argument('--train-dir', default=None,
                        help='training corpora folder (default: $PYSERINI_HYBRID_TRAIN_DATA or ../shared/data/train)')
    parser.add_argument('--device', default=None, help="training device ('cpu' forces the CPU; default: a GPU "
                                                       "when present)")
    parser.add_argument('--threads', type=int, default=None, help='torch threads for training and encoding')
    parser.add_argument('--keep-models', action='store_true', help='keep every trained model after its evaluation')
    parser.add_argument('--progress', action='store_true', help="show the trainer's progress bars")
    parser.add_argument('--arms', default=None, metavar='ARM[,ARM]',
                        help='run only these arms now (the report covers every finished unit)')
    parser.add_argument('--seeds', default=None, metavar='SEED[,SEED]',
                        help='run only these seeds now, e.g. one seed of every arm first')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--dry-run', action='store_true', help='print the units and their recipes; run nothing')
    group.add_argument('--report-only', action='store_true', help='only (re)write the report from finished units')
    return parser


def _seeds(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        return [int(v) for v in value.split(',')]
    except ValueError:
        raise SystemExit(f"error: --seeds takes comma-separated integers, got {value!r}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import dataclasses

    import pyserini_hybrid  # noqa: F401  (Java set-up and dataset registration first)
    from pyserini_hybrid.experiment._config import ExperimentError, load_config
    from pyserini_hybrid.experiment._experiment import run_experiment
    from pyserini_hybrid.experiment._runner import DONE_FILE, TRAINED_ARMS, arm_recipes, plan

    try:
        if args.threads is not None:
            if args.threads < 1:
                raise ExperimentError(f"--threads must be >= 1, got {args.threads}")
            import torch

            torch.set_num_threads(args.threads)
        config = load_config(args.config)
        if args.output:
            config = dataclasses.replace(config, output=args.output)
        if args.dry_run:
            for unit in plan(config):
                state = 'done' if (unit.dir / DONE_FILE).is_file() else 'to do'
                print(f'{unit.label}: {state} ({unit.dir})')
                if unit.arm in TRAINED_ARMS:
                    for recipe in arm_recipes(config, unit.arm, unit.seed):
                        sources = ', '.join(e.source_name + ('' if e.share is None else f' (share {e.share:g})')
                                            for e in recipe.data)
                        template = ('; queries: E5-instruct template, a task per source' if recipe.query_instruction
                                    else '')
                        print(f'    train {recipe.strategy} {recipe.max_steps} steps x {recipe.batch_size} from '
                              f'{recipe.base} on {sources}{template} -> {recipe.output_dir}')
                print(f"    evaluated under bias correction {', '.join(config.evaluation.bias_corrections)}")
            return 0
        report = run_experiment(config, train_dir=args.train_dir, device=args.device, progress=args.progress,
                                keep_models=args.keep_models, report_only=args.report_only,
                                only_arms=args.arms.split(',') if args.arms else None,
                                only_seeds=_seeds(args.seeds))
    except (ValueError, OSError, RuntimeError) as exc:
        # our errors (ExperimentError, RecipeError, TrainDataError, EncoderError, ...) are one line
        message = ' '.join(str(exc).split()) or type(exc).__name__
        print(f'error: {message}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('interrupted: run the same command again to resume', file=sys.stderr)
        return 130
    for sentence in report['answer']:
        print(sentence)
    return 0


if __name__ == '__main__':
    sys.exit(main())

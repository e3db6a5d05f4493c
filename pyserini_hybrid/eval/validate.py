"""Score encoders and bias corrections on the NTREX validation benchmark (training-side data only).

Usage::

    python -m pyserini_hybrid.eval.validate --encoder me5-small-offline models/me5-small-hybrid \\
        --bias-correction none shift center lir:1 lsar:8 --output encoders/validation/mine.json

Writes the rows as JSON and a markdown table beside it (same name, ``.md``). Choose recipes,
checkpoints and corrections with these numbers, never with XQuAD-R's or MLQA-R's.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import pyserini_hybrid  # noqa: F401
    from pyserini_hybrid._io import atomic_write
    from pyserini_hybrid.encoders import BIAS_SOURCES, PRECISIONS, EncoderError
    from pyserini_hybrid.eval.__main__ import parse_corrections
    from pyserini_hybrid.eval._validation import render_validation_table, validate

    parser = argparse.ArgumentParser(prog='python -m pyserini_hybrid.eval.validate', description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='\n'.join(__doc__.split('\n')[1:]))
    parser.add_argument('--encoder', nargs='+', required=True, metavar='ENCODER')
    parser.add_argument('--bias-correction', nargs='+', default=['none'], metavar='METHOD[:RANK]')
    parser.add_argument('--bias-source', default='ntrex', choices=BIAS_SOURCES)
    parser.add_argument('--precision', default='auto', choices=PRECISIONS)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--task', default=None)
    parser.add_argument('--train-dir', default=None, help='folder holding ntrex/ (default $PYSERINI_HYBRID_TRAIN_DATA)')
    parser.add_argument('--output', required=True, metavar='FILE.json')
    args = parser.parse_args(argv)
    try:
        corrections = parse_corrections(args.bias_correction)
        rows = validate(args.encoder, corrections, precision=args.precision, batch_size=args.batch_size,
                        threads=args.threads, task=args.task, bias_source=args.bias_source, train_dir=args.train_dir,
                        show_progress=True, log=lambda line: print(line, file=sys.stderr))
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out) as handle:
            json.dump({'benchmark': 'ntrex-val (NTREX next-sentence, held-out documents)', 'rows': rows}, handle,
                      indent=2, sort_keys=True)
        with atomic_write(out.with_suffix('.md')) as handle:
            handle.write(render_validation_table(rows))
    except (ValueError, OSError, RuntimeError, EncoderError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    sys.stdout.write(render_validation_table(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())

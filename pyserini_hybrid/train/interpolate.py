"""Weight interpolation between a base encoder and a fine-tuned one (WiSE-FT style).

``(1 - weight) * base + weight * tuned`` for every weight tensor; ``weight`` 1 is the tuned model and 0
the base. Fine-tuning on a small CPU budget can trade a little Mono for Cross/Multi; interpolating
(``weight`` < 1) moves back along that trade without training, and extrapolating (``weight`` > 1, up to
``MAX_WEIGHT``) moves further along the fine-tuning direction, as a longer run might. Choose ``weight`` on the NTREX validation benchmark
(``python -m pyserini_hybrid.eval.validate``), never on XQuAD-R.

Usage::

    python -m pyserini_hybrid.train.interpolate --base me5-small-offline --tuned models/me5-small-hybrid \\
        --weight 0.5 --output models/me5-small-hybrid-wi05

The output is a model directory like the tuned one (modules, tokenizer, spec), with the mixed
``model.safetensors`` and an ``interpolation.json`` saying how it was made.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

__all__ = ['MAX_WEIGHT', 'interpolate_weights']

MAX_WEIGHT = 3.0

_SKIP = {'optimizer.pt', 'scheduler.pt', 'rng_state.pth', 'training_args.bin', 'trainer_state.json'}


def interpolate_weights(base: str | os.PathLike, tuned: str | os.PathLike, weight: float,
                        output: str | os.PathLike) -> Path:
    """Write the interpolated model to ``output`` (atomically) and return its path.

    Parameters
    ----------
    base, tuned
        Encoder names or model directories; both must have the same architecture. Tensors of the tuned
        model that the base lacks are kept as tuned.
    weight
        Share of the tuned model, in [0, MAX_WEIGHT] (above 1: extrapolation).
    """
    import torch
    from safetensors.torch import load_file, save_file

    from pyserini_hybrid._io import atomic_dir
    from pyserini_hybrid.encoders import SPEC_FILE, EncoderError, get_spec, model_path, save_spec

    if not 0.0 <= weight <= MAX_WEIGHT:
        raise EncoderError(f"interpolation weight must be in [0, {MAX_WEIGHT:g}], got {weight}")
    base_dir, tuned_dir = Path(model_path(base)), Path(tuned)
    for d in (base_dir, tuned_dir):
        if not (d / 'model.safetensors').is_file():
            raise EncoderError(f"{d}: no model.safetensors to interpolate")
    a, b = load_file(str(base_dir / 'model.safetensors')), load_file(str(tuned_dir / 'model.safetensors'))
    mixed = {}
    for key, value in b.items():
        other = a.get(key)
        if other is None or not value.is_floating_point():
            mixed[key] = value
            continue
        if other.shape != value.shape:
            raise EncoderError(f"{key}: shape {tuple(other.shape)} in {base_dir} but {tuple(value.shape)} in {tuned_dir}")
        mixed[key] = ((1.0 - weight) * other.to(torch.float32) + weight * value.to(torch.float32)).to(value.dtype).contiguous()
    spec_from = tuned_dir if (tuned_dir / SPEC_FILE).is_file() else base
    spec = get_spec(str(spec_from))
    with atomic_dir(Path(output)) as tmp:
        for item in tuned_dir.iterdir():
            if item.name in _SKIP or item.name == 'model.safetensors' or item.name.startswith('bias-'):
                continue
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        save_file(mixed, str(tmp / 'model.safetensors'), metadata={'format': 'pt'})
        save_spec(tmp, spec)
        (tmp / 'interpolation.json').write_text(json.dumps(
            {'base': str(base), 'tuned': str(tuned), 'weight': weight,
             'rule': '(1 - weight) * base + weight * tuned'}, indent=2) + '\n', encoding='utf-8')
    return Path(output)


def main(argv: list[str] | None = None) -> int:
    import pyserini_hybrid  # noqa: F401

    parser = argparse.ArgumentParser(prog='python -m pyserini_hybrid.train.interpolate',
                                     description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog='\n'.join(__doc__.split('\n')[1:]))
    parser.add_argument('--base', required=True, help='base encoder (name or directory)')
    parser.add_argument('--tuned', required=True, help='fine-tuned model directory')
    parser.add_argument('--weight', type=float, required=True, help=f'share of the tuned model, in [0, {MAX_WEIGHT:g}] (above 1: extrapolation)')
    parser.add_argument('--output', required=True, help='model directory to write')
    args = parser.parse_args(argv)
    try:
        print(interpolate_weights(args.base, args.tuned, args.weight, args.output))
    except (ValueError, OSError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())

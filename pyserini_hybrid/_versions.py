"""Version floors of the training stack, checked where it is first needed.

setup.cfg declares the same floors; this check is for an environment that was changed after
installing (a ``pip install`` of an older sentence-transformers, say), where the failure would
otherwise be an ``ImportError`` deep inside a submodule or, worse, a silently different training.
"""
from __future__ import annotations

import re
from importlib import metadata
from typing import Mapping

__all__ = ['FLOORS', 'check_versions']

# sentence-transformers 6 moved the trainer, samplers and modules under sentence_transformers.base
# (we import sentence_transformers.base.sampler and .base.modules); transformers 5 reads a
# fractional warmup_steps as a share of the steps (the recipes' 'warmup'), 4.x as a step count.
FLOORS: dict[str, tuple[int, int]] = {'sentence-transformers': (6, 0), 'transformers': (5, 0)}


def _release(version: str) -> tuple[int, int]:
    match = re.match(r'(\d+)(?:\.(\d+))?', version)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else (0, 0)


def check_versions(installed: Mapping[str, str | None] | None = None) -> None:
    """Raise ``ImportError`` (one line) when a package of :data:`FLOORS` is missing or too old.

    Parameters
    ----------
    installed : mapping, optional
        ``{distribution: version or None}``; default: what ``importlib.metadata`` finds.
    """
    if installed is None:
        installed = {}
        for name in FLOORS:
            try:
                installed[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                installed[name] = None
    low = [(name, installed.get(name)) for name, floor in FLOORS.items()
           if installed.get(name) is None or _release(installed[name]) < floor]
    if low:
        need = ' '.join(f"'{name}>={'.'.join(map(str, FLOORS[name]))}'" for name, _ in low)
        found = ', '.join(f"{name} {version or 'not installed'}" for name, version in low)
        raise ImportError(f"pyserini_hybrid.train needs {need} (found {found}): pip install -U {need}")

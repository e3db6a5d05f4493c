"""The machine a benchmark ran on, recorded beside every figure (figures from different CPUs differ).

``describe()`` is the dict each benchmark stores under ``"machine"``; ``tag()`` names the CPU kind in
the result files (``encode-avx2.md``, ``encode-amx.md``...), so tables from several machines can be
committed side by side.
"""
from __future__ import annotations

import os
import platform

from pyserini_hybrid.encoders._model import _cpu_flags, native_bf16

SIMD_PREFIXES = ('avx', 'amx')


def describe() -> dict:
    """CPU model, cores, SIMD flags (AVX*, AMX*, FMA), native bf16, Python and torch versions."""
    import torch

    model = None
    try:
        with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as handle:
            model = next((line.split(':', 1)[1].strip() for line in handle if line.startswith('model name')), None)
    except OSError:
        pass
    flags = _cpu_flags() or frozenset()
    return {'cpu_model': model or platform.processor() or platform.machine(), 'cores': os.cpu_count(),
            'simd': sorted(f for f in flags if f.startswith(SIMD_PREFIXES) or f == 'fma'),
            'native_bf16': native_bf16(), 'python': platform.python_version(), 'torch': torch.__version__}


def tag() -> str:
    """``amx``, ``avx512-bf16``, ``avx512``, ``avx2`` or ``other``: the CPU kind that decides the fast path."""
    flags = _cpu_flags() or frozenset()
    for name, needed in (('amx', 'amx_bf16'), ('avx512-bf16', 'avx512_bf16'), ('avx512', 'avx512f'), ('avx2', 'avx2')):
        if needed in flags:
            return name
    return 'other'


def machine_line(info: dict) -> str:
    """One markdown line naming the machine."""
    return (f"Machine: {info['cpu_model']}, {info['cores']} cores, SIMD {' '.join(info['simd']) or 'none listed'}; "
            f"native bf16: {info['native_bf16']}; Python {info['python']}, torch {info['torch']}.")

"""Reading training corpus files: every malformed file is one :class:`TrainDataError` line naming it.

UTF-8 only; lines split on ``\\n`` alone (``str.splitlines`` would also break inside texts at
U+2028 / U+0085); TSV rows checked for their field count; JSON errors give the line.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyserini_hybrid.train._data import TrainDataError

__all__ = ['need_file', 'read_lines', 'read_tsv', 'read_json']


def need_file(path: Path, corpus: str) -> Path:
    if not path.is_file():
        raise TrainDataError(f"missing training file {path} (corpus {corpus!r}); see ../shared/data/README.md")
    return path


def read_lines(path: Path, corpus: str) -> list[str]:
    try:
        text = need_file(path, corpus).read_bytes().decode('utf-8')
    except UnicodeDecodeError as exc:
        raise TrainDataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    # split on newlines only: str.splitlines() would also break at U+2028, U+0085 etc. inside texts
    lines = [line.rstrip('\r') for line in text.split('\n')]
    if lines and lines[-1] == '':
        lines.pop()
    return lines


def read_tsv(path: Path, corpus: str, n_fields: int | tuple[int, ...]) -> list[list[str]]:
    wanted = (n_fields,) if isinstance(n_fields, int) else n_fields
    rows = []
    for lineno, line in enumerate(read_lines(path, corpus), 1):
        fields = line.split('\t')
        if len(fields) not in wanted:
            raise TrainDataError(f"{path}:{lineno}: expected {' or '.join(map(str, wanted))} tab-separated "
                                 f"fields, got {len(fields)}")
        rows.append(fields)
    return rows


def read_json(path: Path, corpus: str, raw: bytes | None = None) -> Any:
    try:
        data = raw if raw is not None else need_file(path, corpus).read_bytes()
        return json.loads(data.decode('utf-8'))
    except UnicodeDecodeError as exc:
        raise TrainDataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise TrainDataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


# ----------------------------------------------------------------------------------------------

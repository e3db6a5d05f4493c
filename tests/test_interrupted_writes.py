"""A process killed mid-write leaves no file that looks complete (atomic outputs)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pyserini_hybrid._trec import read_run, write_run
from pyserini_hybrid.train._trainer import last_checkpoint

# Writes a 400-query run through write_run, slowly (write_run formats the whole file, then writes it:
# here its file takes 10 ms a kB to write), so that the parent can kill it while the file is half written.
SLOW_WRITER = textwrap.dedent('''
    import contextlib, sys, time
    import pyserini_hybrid._trec as trec

    real_atomic_write = trec.atomic_write

    @contextlib.contextmanager
    def slow_atomic_write(path, *args, **kwargs):
        with real_atomic_write(path, *args, **kwargs) as out:
            class Slow:
                def write(self, text):
                    for i in range(0, len(text), 1000):
                        out.write(text[i:i + 1000])
                        out.flush()
                        time.sleep(0.01)
            yield Slow()

    trec.atomic_write = slow_atomic_write
    trec.write_run({f'q{i:04d}': [(f'd{j}', float(-j)) for j in range(50)] for i in range(400)}, sys.argv[1])
''')


def _kill_while_writing(target: Path) -> None:
    proc = subprocess.Popen([sys.executable, '-c', SLOW_WRITER, str(target)])
    try:
        deadline = time.monotonic() + 60
        # wait until the temporary file next to the target holds some lines
        while time.monotonic() < deadline:
            tmp = [p for p in target.parent.glob(f'.{target.name}.*.tmp') if p.stat().st_size > 10_000]
            if tmp:
                break
            assert proc.poll() is None, 'the writer ended before it could be killed'
            time.sleep(0.02)
        else:
            raise AssertionError('the writer never started writing')
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_killed_run_writer_leaves_no_run_file(tmp_path):
    target = tmp_path / 'run.xquad-r.mono-en.txt'
    _kill_while_writing(target)
    assert not target.exists()
    # what is left is a hidden *.tmp file: never read as a run by name or by a directory's run files
    assert all(p.name.startswith('.') and p.name.endswith('.tmp') for p in tmp_path.iterdir())


def test_killed_rewrite_keeps_the_previous_complete_file(tmp_path):
    target = tmp_path / 'run.txt'
    write_run({'q1': [('d1', 2.0), ('d2', 1.0)]}, target)
    before = target.read_bytes()
    _kill_while_writing(target)
    assert target.read_bytes() == before
    assert read_run(target) == {'q1': [('d1', 2.0), ('d2', 1.0)]}


def test_a_checkpoint_without_its_state_file_is_not_resumed_from(tmp_path):
    # the trainer writes trainer_state.json last: a checkpoint killed before it is ignored
    for step, complete in ((100, True), (200, False)):
        ckpt = tmp_path / f'checkpoint-{step}'
        ckpt.mkdir()
        (ckpt / 'model.safetensors').write_bytes(b'partial')
        if complete:
            (ckpt / 'trainer_state.json').write_text(json.dumps({'global_step': step}))
    (tmp_path / 'checkpoint-300').mkdir()
    (tmp_path / 'checkpoint-300' / 'trainer_state.json').write_text('{"global_st')  # cut mid-write
    assert last_checkpoint(tmp_path) == tmp_path / 'checkpoint-100'


# An error inside the ``with`` block (a failing writer, not a killed process) removes the temporary
# file / folder at once and leaves an existing output as it was.


def test_atomic_write_error_leaves_no_temporary_file_and_keeps_the_old_file(tmp_path):
    from pyserini_hybrid._io import atomic_write

    target = tmp_path / 'report.json'
    with pytest.raises(RuntimeError, match='writer failed'):
        with atomic_write(target) as out:
            out.write('half a new file')
            assert len(list(tmp_path.iterdir())) == 1          # the temporary file, next to the target
            raise RuntimeError('writer failed')
    assert list(tmp_path.iterdir()) == []
    target.write_text('previous')
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target, 'wb') as out:
            out.write(b'new')
            raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ['report.json'] and target.read_text() == 'previous'


def test_atomic_dir_error_leaves_no_temporary_folder_and_keeps_the_old_folder(tmp_path):
    from pyserini_hybrid._io import atomic_dir, atomic_write

    target = tmp_path / 'model'
    with pytest.raises(OSError, match='disk full'):
        with atomic_dir(target) as tmp:
            (tmp / 'weights.bin').write_bytes(b'0' * 1000)
            with atomic_write(tmp / 'card.md') as out:
                out.write('card')
            raise OSError('disk full')
    assert list(tmp_path.iterdir()) == []
    target.mkdir()
    (target / 'weights.bin').write_bytes(b'old')
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / 'weights.bin').write_bytes(b'new')
            (tmp / 'sub').mkdir()
            raise ValueError('bad')
    assert [p.name for p in tmp_path.iterdir()] == ['model']
    assert [p.name for p in target.iterdir()] == ['weights.bin'] and (target / 'weights.bin').read_bytes() == b'old'
    # and on success the old folder is replaced with nothing left beside it
    with atomic_dir(target) as tmp:
        (tmp / 'weights.bin').write_bytes(b'new')
    assert [p.name for p in tmp_path.iterdir()] == ['model'] and (target / 'weights.bin').read_bytes() == b'new'

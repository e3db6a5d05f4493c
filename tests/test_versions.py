"""The version floors of setup.cfg, enforced at ``import pyserini_hybrid.train`` with one clear line."""
from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyserini_hybrid._versions import FLOORS, check_versions

REPO = Path(__file__).resolve().parents[1]


def test_setup_cfg_declares_the_floors_the_check_enforces():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / 'setup.cfg', encoding='utf-8')
    requires = {re.split(r'[<>=!]', line, 1)[0].strip(): line.strip()
                for line in cfg['options']['install_requires'].splitlines() if line.strip()}
    for name, (major, minor) in FLOORS.items():
        assert requires[name] == f'{name}>={major}.{minor},<{major + 1}', requires[name]


def test_installed_versions_pass_and_old_ones_are_one_line():
    check_versions()   # this environment
    check_versions({'sentence-transformers': '6.0.0', 'transformers': '5.0.0rc1'})
    with pytest.raises(ImportError) as exc:
        check_versions({'sentence-transformers': '5.4.1', 'transformers': '5.24.0'})
    assert str(exc.value) == ("pyserini_hybrid.train needs 'sentence-transformers>=6.0' (found sentence-transformers "
                              "5.4.1): pip install -U 'sentence-transformers>=6.0'")
    with pytest.raises(ImportError, match=r"needs 'sentence-transformers>=6.0' 'transformers>=5.0' \(found "
                                          r"sentence-transformers not installed, transformers 4\.57\.1\)"):
        check_versions({'sentence-transformers': None, 'transformers': '4.57.1'})


def test_an_old_sentence_transformers_stops_the_training_cli_with_one_line(tmp_path):
    """A dist-info of sentence-transformers 5.4.0 first on the path: what importlib.metadata reports."""
    info = tmp_path / 'sentence_transformers-5.4.0.dist-info'
    info.mkdir()
    (info / 'METADATA').write_text('Metadata-Version: 2.1\nName: sentence-transformers\nVersion: 5.4.0\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    proc = subprocess.run([sys.executable, '-m', 'pyserini_hybrid.train', '--recipe', 'encoders/me5-small-hybrid.yaml',
                           '--dry-run'], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "ImportError: pyserini_hybrid.train needs 'sentence-transformers>=6.0' (found sentence-transformers 5.4.0): "
        "pip install -U 'sentence-transformers>=6.0'")

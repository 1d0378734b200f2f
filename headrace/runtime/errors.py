"""Errors an operator can fix. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path


class OperatorError(Exception):
    """A mistake in configuration or environment; the message says what to do."""


# A setting that starts like a URL scheme (`s3:`, `gs:/x`, `sqlite:`): not a plain local path.
URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_PASSWORD_FIELD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def flatten(text: str) -> str:
    """Every line of `text` on one line."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def one_line(exc: BaseException) -> str:
    """An exception's message on one line: its first paragraph, its lines joined.

    DuckDB puts its hints on the lines after the first ("Candidate bindings: ...", "Did you
    mean ...?"), then a blank line and the query excerpt with a caret, which means nothing once
    flattened; libpq adds "Is the server running ...?" on a second line.
    """
    first = str(exc).strip().split("\n\n", 1)[0]
    return flatten(first) or type(exc).__name__


def os_reason(exc: OSError) -> str:
    """The operating system's reason without Python's decoration (`[Errno 13] ...: 'path'`)."""
    return exc.strerror or one_line(exc)


def without_passwords(text: str) -> str:
    """`text` with the value of any libpq `password=` field or URI password masked."""
    return _URI_PASSWORD.sub(r"\1***@", _PASSWORD_FIELD.sub(r"\1***", text))


def folder_problem(path: Path, exc: OSError) -> str:
    """Why the folder `path` could not be created, naming the part of the path at fault."""
    for p in (path, *path.parents):
        try:
            if not p.exists():
                continue
            if not p.is_dir():
                return f"{p} is a file, not a folder"
        except OSError:
            continue
        break
    reason = os_reason(exc)
    if exc.filename and str(exc.filename) != str(path):
        return f"{reason}: {exc.filename}"
    return reason


def exit_on_operator_error(entry: Callable[[], None]) -> None:
    """Run `entry`; an OperatorError is one line on stderr (`headrace: error: ...`), exit 2."""
    try:
        entry()
    except OperatorError as exc:
        print(f"headrace: error: {flatten(str(exc)) or type(exc).__name__}", file=sys.stderr)
        sys.exit(2)

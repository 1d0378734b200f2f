"""`headrace sql`: run SQL against the warehouse read-only, print or export the result.

A script may hold several statements; all run in order and the last one's result is the output.
Exports stream through DuckDB's COPY (CSV, JSON, Parquet), so a large result never passes through
Python rows. The interactive shell reads statements ending in ";" and a few dot commands.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TextIO

import duckdb

from headrace.runtime.errors import OperatorError, one_line, os_reason


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


COPY_OPTIONS = {
    OutputFormat.csv: "FORMAT csv, HEADER true",
    OutputFormat.json: "FORMAT json, ARRAY true",
    OutputFormat.parquet: "FORMAT parquet, COMPRESSION zstd",
}
SHELL_HELP = """statements end with ';'. Dot commands:
  .tables              list tables and views
  .describe NAME       columns of a table or view
  .mode table|csv|json output format
  .quit                leave (or Ctrl-D)"""


def script_text(query: str) -> str:
    """The SQL itself, or the contents of the .sql file it names."""
    path = Path(query)
    if query.endswith(".sql") and path.is_file():
        try:
            return path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
            raise OperatorError(f"cannot read {path}: {reason}") from None
    return query


def run(
    con: duckdb.DuckDBPyConnection,
    text: str,
    fmt: OutputFormat = OutputFormat.table,
    output: Path | None = None,
    max_rows: int = 100,
) -> None:
    """Run every statement of `text`; print or export the last one's result."""
    try:
        statements = con.extract_statements(text)
        if not statements:
            raise OperatorError("no SQL statement given")
        for statement in statements[:-1]:
            con.execute(statement.query)
        last = statements[-1]
        if fmt is OutputFormat.table:
            _show(con, last.query, output, max_rows)
        else:
            export(con, last.query, fmt, output)
    except duckdb.Error as exc:
        # One line that keeps DuckDB's hints ("Candidate bindings: ...", "Did you mean ...?").
        raise OperatorError(f"query failed: {one_line(exc)}") from None
    except OSError as exc:  # the --output file of a table
        raise OperatorError(f"cannot write {output}: {os_reason(exc)}") from None


def export(
    con: duckdb.DuckDBPyConnection, query: str, fmt: OutputFormat, output: Path | None
) -> None:
    if fmt is OutputFormat.parquet and output is None:
        raise OperatorError("Parquet is binary: give a file with --output")
    target = str(output) if output else "/dev/stdout"
    sys.stdout.flush()
    quoted = "'" + target.replace("'", "''") + "'"
    try:
        con.execute(f"COPY ({query}) TO {quoted} ({COPY_OPTIONS[fmt]})")
    except duckdb.ParserException:
        # DESCRIBE, SHOW, SUMMARIZE... cannot sit inside COPY: materialize them (they are small).
        result = con.sql(query)
        if result is None:
            raise OperatorError("the last statement returns no rows to export") from None
        table = result.arrow()
        with duckdb.connect() as side:
            side.register("result", table)
            side.execute(f"COPY result TO {quoted} ({COPY_OPTIONS[fmt]})")


def _show(con: duckdb.DuckDBPyConnection, query: str, output: Path | None, max_rows: int) -> None:
    result = con.sql(query)
    if result is None:
        return
    if output is not None:
        output.write_text(str(result) + "\n")
    else:
        result.show(max_rows=max_rows, max_width=10_000)


def shell(con: duckdb.DuckDBPyConnection, stdin: TextIO = sys.stdin) -> None:
    """Read statements until end of input; errors are printed and the shell goes on."""
    interactive = stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (line editing and history for input())

        print("headrace sql: the warehouse, read-only. .help for help.")
    fmt, buffer = OutputFormat.table, ""
    while True:
        line = _read_line(stdin, "headrace> " if not buffer else "     ...> ", interactive)
        if line is None:
            break
        stripped = line.strip()
        if not buffer and stripped.startswith("."):
            command, _, arg = stripped.partition(" ")
            if command in (".quit", ".exit"):
                break
            fmt = _dot_command(con, command, arg.strip(), fmt)
            continue
        buffer += line + "\n"
        if stripped.endswith(";"):
            try:
                run(con, buffer, fmt)
            except OperatorError as exc:
                print(f"error: {exc}", file=sys.stderr)
            buffer = ""
    if buffer.strip():
        try:
            run(con, buffer, fmt)
        except OperatorError as exc:
            print(f"error: {exc}", file=sys.stderr)


def _read_line(stdin: TextIO, prompt: str, interactive: bool) -> str | None:
    if interactive:
        try:
            return input(prompt)
        except EOFError:
            print()
            return None
    line = stdin.readline()
    return line.rstrip("\n") if line else None


def _dot_command(
    con: duckdb.DuckDBPyConnection, command: str, arg: str, fmt: OutputFormat
) -> OutputFormat:
    try:
        if command == ".tables":
            run(
                con,
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_catalog = current_database() ORDER BY 1",
                fmt,
            )
        elif command == ".describe" and arg:
            run(con, f"DESCRIBE {arg}", fmt)
        elif command == ".mode" and arg in ("table", "csv", "json"):
            return OutputFormat(arg)
        else:
            print(SHELL_HELP)
    except OperatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
    return fmt

"""Resolving a pom's dependencies from Maven Central into a folder of the cache, all or nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from headrace.runtime.errors import OperatorError


def copy_dependencies(pom: Path, into: Path, what: str, *options: str) -> None:
    """The jars `pom` names, in `into` (replaced), or one line that says why not.

    Maven fills a staging folder beside `into`, renamed only once complete, so an interrupted
    download never leaves a folder that looks fetched.
    """
    if shutil.which("mvn") is None:
        raise OperatorError(
            f"Maven is needed to fetch {what}; install it (apt-get install maven) and retry"
        )
    staging = into.with_name(into.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    cmd = ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies"]
    cmd += [f"-DoutputDirectory={staging}", *options]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise OperatorError(f"Maven could not resolve {what}: {' | '.join(tail)}")
    shutil.rmtree(into, ignore_errors=True)
    staging.rename(into)

"""The validator's job as a faust-streaming agent, the way a faust user would write it.

    python -m bench.faust_validator --bootstrap HOST:PORT --source T --validated T --errors T \
        --group G --events N --result FILE --datadir DIR

One event at a time: check it (bench/event_checks.py), then `await topic.send(...)` to validated
(same partition) or error. faust's default at-least-once processing: it has no transactions to
match the service's, which only flatters it. Writes the result file after N events and keeps
running until the parent stops it.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import faust

from bench.comparison_result import Progress
from bench.event_checks import EventChecks


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("bootstrap", "source", "validated", "errors", "group", "result", "datadir"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--events", type=int, required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=args.datadir,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        topic_allow_declare=False,  # the parent created the topics
    )
    source = app.topic(args.source, key_serializer="raw", value_serializer="raw")
    validated = app.topic(args.validated, key_serializer="raw", value_serializer="raw")
    errors = app.topic(args.errors, key_serializer="raw", value_serializer="raw")
    checks = EventChecks()
    progress = Progress(args.events)
    result = Path(args.result)

    @app.agent(source)
    async def validate(stream: Any) -> None:
        async for event in stream.events():
            m = event.message
            # faust gives the timestamp in seconds; the envelope wants milliseconds.
            ts_ms = int(m.timestamp * 1000)
            ok, out = checks.check(event.value, m.topic, m.partition, m.offset, ts_ms)
            if ok:
                await validated.send(key=m.key, value=out, partition=m.partition)
            else:
                await errors.send(key=m.key, value=out)
            progress.tick(result)

    faust.Worker(app, loglevel="warning").execute_from_commandline()


if __name__ == "__main__":
    main()

"""The validator's job as a Quix Streams application, the way a Quix user would write it.

    python -m bench.quix_validator --bootstrap HOST:PORT --source T --validated T --errors T \
        --group G --events N --result FILE --state-dir DIR

A StreamingDataFrame applies the checks (bench/event_checks.py) to each event and branches: valid
records to validated, envelopes to error. processing_guarantee="exactly-once" (Kafka
transactions per checkpoint), the service's guarantee; the consumer gets the same fetch tuning as
the service (measured on these machines). Writes the result file after N events, then stops
the application.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from quixstreams import Application, message_context
from quixstreams.models import TopicConfig

from bench.comparison_result import Progress
from bench.event_checks import EventChecks
from headrace.kafka.clients import BATCH_CONSUMER_DEFAULTS

FETCH_TUNING = {
    k: BATCH_CONSUMER_DEFAULTS[k] for k in ("fetch.queue.backoff.ms", "queued.min.messages")
}


def main() -> None:
    p = argparse.ArgumentParser()
    for name in ("bootstrap", "source", "validated", "errors", "group", "result", "state-dir"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--events", type=int, required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        consumer_extra_config=FETCH_TUNING,
        state_dir=args.state_dir,
        loglevel="WARNING",
        auto_create_topics=False,  # the parent created the topics
    )
    config = TopicConfig(num_partitions=6, replication_factor=1)
    source = app.topic(
        args.source, key_deserializer="bytes", value_deserializer="bytes", config=config
    )
    validated = app.topic(args.validated, key_serializer="bytes", value_serializer="bytes")
    errors = app.topic(args.errors, key_serializer="bytes", value_serializer="bytes")
    checks = EventChecks()
    progress = Progress(args.events)
    result = Path(args.result)

    def check(value: bytes, key: Any, timestamp: int, headers: Any) -> tuple[bool, bytes]:
        ctx = message_context()
        return checks.check(value, ctx.topic, ctx.partition, ctx.offset, timestamp)

    def count(_: Any) -> None:
        if progress.tick(result):
            app.stop()

    sdf = app.dataframe(source).apply(check, metadata=True)
    sdf[sdf.apply(lambda r: r[0])].apply(lambda r: r[1]).to_topic(validated)
    sdf[sdf.apply(lambda r: not r[0])].apply(lambda r: r[1]).to_topic(errors)
    sdf.update(count)
    app.run()


if __name__ == "__main__":
    main()

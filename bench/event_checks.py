"""The validator's checks for one event, written the way a faust or Quix Streams user would.

The same contract as the validator service (headrace/contract/rules.py: the msgspec Struct built
from the Avro schema and its rules, so types, required fields, ranges, enums and patterns are
checked while decoding, then the time bounds), the same reason classification and the same Avro
encoding and error envelope, one event at a time. It does not call the service's batch `Validator`:
that is built for batches (columnar checks with a fixed cost per call), and calling it once per
event would charge the comparison programs for a design they would not use.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from headrace.codec.registry import default_registry
from headrace.contract import envelope
from headrace.contract.envelope import Problem
from headrace.contract.rules import load_contract
from headrace.contract.validator import classify


class EventChecks:
    def __init__(self) -> None:
        self.registry = default_registry()
        self.contract = load_contract()
        self.decoder = msgspec.json.Decoder(self.contract.struct)

    def problems(self, value: bytes | None) -> tuple[dict[str, Any] | None, list[Problem]]:
        if not value:
            return None, [Problem("EMPTY", None, "empty message")]
        try:
            value.decode("utf-8")
            record = msgspec.structs.asdict(self.decoder.decode(value))
        except UnicodeDecodeError as exc:
            return None, [Problem("ENCODING", None, str(exc))]
        except msgspec.ValidationError as exc:
            return None, [classify(exc)]
        except msgspec.DecodeError as exc:
            return None, [Problem("PARSE", None, str(exc))]
        now = datetime.now(UTC)
        late = [
            Problem("TIME", b.field, "out of bounds")
            for b in self.contract.time_bounds
            if not b.not_before <= record[b.field] <= now + b.max_future_skew
        ]
        return record, late

    def check(
        self, value: bytes | None, topic: str, partition: int, offset: int, timestamp_ms: int
    ) -> tuple[bool, bytes]:
        """(valid?, bytes to send): the Avro record, or the error envelope."""
        record, problems = self.problems(value)
        if record is not None and not problems:
            return True, self.registry.encode(self.contract.schema_file, record)
        env = envelope.build(problems, "validator", (topic, partition, offset), value, timestamp_ms)
        return False, self.registry.encode(envelope.ENVELOPE_SCHEMA, env)

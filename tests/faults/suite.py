"""The fault-injection suite: faults while data flows, then the exactly-once invariants.

    python -m tests.faults.suite --faults 200 --seed 1      (make faults FAULTS=200 SEED=1)

A seeded generator feeds waves of events (about 3% bad) through `headrace replay` with an ack log,
while the suite injects faults of every kind: kill -9 of a service at a random moment and at each
named crash point, SIGSTOP past the consumer's max poll interval (with a second replica taking
over), SIGTERM rolling restarts, scaling a consumer group 1 -> 3 -> 1, a hard kill of the broker,
and bucket faults on the gs:// path (503s, connection resets, stalls and lost upload responses from
a fault proxy in front of the GCS emulator; `--bucket local` runs on a folder, without them).
The catalog is a SQLite file, or with `--catalog postgres` a PostgreSQL server of the run's own
(headrace/dev/infra/postgres_server.py), whose writers are fenced by advisory locks.
The suite is also the supervisor: a service that exited is restarted, as Kubernetes would.
When the faults are done and the pipeline is quiet, it checks I1-I11 and prints a JSON summary;
the seed replays the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headrace.audit.invariants import Checker, Verdict
from headrace.audit.pipeline_lag import StageLag, stage_lags
from headrace.audit.reconciliation import Reconciliation
from headrace.cli.report_view import current_counts
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.kafka_broker import KafkaBroker
from headrace.dev.infra.postgres_server import PostgresServer
from headrace.dev.local_pipeline import LocalPipeline
from headrace.dev.sample_events import generate
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics, ensure_pipeline_topics
from headrace.lake import warehouse
from headrace.runtime import registry
from headrace.runtime.crash_points import ENV as CRASH_ENV
from headrace.runtime.crash_points import POINTS
from headrace.runtime.settings import CommonSettings
from tests.faults.gcs_bucket import GcsBucket
from tests.faults.gcs_fault_proxy import MODES as BUCKET_MODES

CONSUMERS = ("stager", "validator", "loader")
SUPERVISED = registry.NAMES  # in pipeline order: a seed's choices depend on it
KINDS = ("kill9", "crash_point", "sigstop", "sigterm", "scale", "broker_restart", "bucket")
# Share of requests that meet a bucket fault while it is on: enough that most batches meet one,
# few enough that retries mostly get through and the pipeline keeps partly working.
BUCKET_FRACTION = {
    "503": (0.2, 0.5),
    "reset": (0.2, 0.5),
    "stall": (0.1, 0.3),
    "lost_response": (0.3, 0.6),  # of writes only
}
SESSION_TIMEOUT_MS = 6_000
MAX_POLL_INTERVAL_MS = 8_000
LIVENESS_SECONDS = 60.0


@dataclass
class Feeder:
    """Replays seeded waves of events in a background thread, each wave a `headrace replay`,
    until told to stop (and at least `min_waves`), so data flows during every fault."""

    home: Path
    env: dict[str, str]
    seed: int
    min_waves: int
    wave_events: int
    rate: int
    crash_next: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    waves: int = 0
    crashed_waves: int = 0

    @property
    def ack_log(self) -> Path:
        return self.home / "acks.log"

    def run(self) -> None:
        while self.waves < self.min_waves or not self.stop.is_set():
            self._wave(self.waves)
            self.waves += 1

    def _wave(self, wave: int) -> None:
        sample = self.home / f"wave-{wave:04d}.jsonl"
        generate(
            sample,
            self.wave_events,
            0.03,
            self.seed * 100_003 + wave,
            first_id=1 + wave * self.wave_events,
        )
        env = dict(self.env)
        if self.crash_next.is_set():
            self.crash_next.clear()
            env[CRASH_ENV] = "producer.after_batch"
        cmd = [
            sys.executable,
            "-m",
            "headrace",
            "replay",
            str(sample),
            "--rate",
            str(self.rate),
            "--ack-log",
            str(self.ack_log),
        ]
        with (self.home / "replay.log").open("ab") as log:
            result = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            self.crashed_waves += 1


@dataclass
class FaultSuite:
    home: Path
    seed: int
    faults: int
    infra: InfraSettings
    wave_events: int = 3_000
    rate: int = 3_000
    bucket: str = "gs"  # "gs": emulator behind the fault proxy; "local": a folder, no bucket faults
    catalog: str = "sqlite"  # "sqlite": a file in home; "postgres": the run's own server
    injected: Counter[str] = field(default_factory=Counter)
    log: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.last_counts: Reconciliation | None = None
        self.last_lags: list[StageLag] = []
        self.caught_up_at: dict[str, float] = {}
        self.broker = KafkaBroker(self.infra)
        prefix = f"faults-{self.seed}-{int(time.time())}"
        port_base = _free_port_base()
        self.gcs: GcsBucket | None = None
        if self.bucket == "gs":
            kafka = self.infra.kafka_port
            taken = {*range(port_base, port_base + 40), *range(kafka, kafka + 4)}
            self.gcs = GcsBucket(self.home, self.seed, frozenset(taken))
        self.postgres = PostgresServer(self.infra) if self.catalog == "postgres" else None
        # The suite's own reads (readiness, I8 probes, the checker) go to the emulator directly.
        self.common = CommonSettings(
            bootstrap_servers=self.infra.bootstrap,
            topic_prefix=prefix,
            bucket_url=self.gcs.url(prefix) if self.gcs else str(self.home / "bucket"),
            catalog_url=(
                self.postgres.catalog_url if self.postgres else str(self.home / "catalog.sqlite")
            ),
            gcs_endpoint=self.gcs.check_endpoint if self.gcs else None,
        )
        env = {
            "HEADRACE_BOOTSTRAP_SERVERS": self.infra.bootstrap,
            "HEADRACE_TOPIC_PREFIX": prefix,
            "HEADRACE_BUCKET_URL": self.common.bucket_url,
            "HEADRACE_CATALOG_URL": self.common.catalog_url,
            "HEADRACE_SUMMARIZER_DATA_DIR": str(self.home / "summarizer"),
            "HEADRACE_SUMMARIZER_CATCH_UP_SECONDS": "1",
            "HEADRACE_VALIDATOR_BATCH_MAX_MESSAGES": "2000",
            "HEADRACE_LOADER_BATCH_MAX_WAIT_SECONDS": "0.5",
            # A stuck service exits and is restarted well within the 60 s liveness budget (I7).
            "HEADRACE_WATCHDOG_SECONDS": "30",
            # A batch can outlast the watchdog (the loop keeps polling): one stuck in a client
            # call still ends in a restart, sooner than the production defaults.
            "HEADRACE_VALIDATOR_BATCH_MAX_HANDLE_SECONDS": "45",
            "HEADRACE_STAGER_BATCH_MAX_HANDLE_SECONDS": "120",
            "HEADRACE_LOADER_BATCH_MAX_HANDLE_SECONDS": "120",
            "HEADRACE_SUMMARIZER_REFRESH_MAX_SECONDS": "120",
        }
        for s in CONSUMERS:
            env[f"HEADRACE_{s.upper()}_SESSION_TIMEOUT_MS"] = str(SESSION_TIMEOUT_MS)
            env[f"HEADRACE_{s.upper()}_MAX_POLL_INTERVAL_MS"] = str(MAX_POLL_INTERVAL_MS)
        if self.gcs:
            env["HEADRACE_GCS_ENDPOINT"] = self.gcs.service_endpoint  # the services: via the proxy
        if self.postgres:
            env["PGPASSWORD"] = self.postgres.password
        self.env = env
        self.pipeline = LocalPipeline(self.home, env, port_base=port_base)

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS if self.gcs else tuple(k for k in KINDS if k != "bucket")

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.home.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:  # whatever fails, even at start, leaves no process of ours behind
            verdicts = self._run()
        finally:
            self.pipeline.stop()
            self.broker.stop()
            if self.gcs:
                self.gcs.stop()
            if self.postgres:
                self.postgres.stop()
        return self._summary(verdicts, time.monotonic() - started)

    def _run(self) -> list[Verdict]:
        if self.postgres:
            self.postgres.start()
            os.environ["PGPASSWORD"] = self.postgres.password  # the suite's own reads
        if self.gcs:
            self.gcs.start()
        self.broker.start()
        ensure_pipeline_topics(
            kafka_clients.admin(self.infra.bootstrap), Topics(self.common.topic_prefix)
        )
        warehouse.migrate(warehouse.connect(self.common))
        self.pipeline.start()
        self.pipeline.wait_ready()
        feeder = Feeder(self.home, self.env, self.seed, 3, self.wave_events, self.rate)
        feeding = threading.Thread(target=feeder.run, daemon=True)
        feeding.start()
        for kind, target in self._plan():
            self._inject(kind, target, feeder)
            self._supervise()
            time.sleep(self.rng.uniform(0.2, 1.0))
        last_fault = time.monotonic()
        feeder.stop.set()
        feeding.join()  # the wave in flight finishes: its events count in the catch-up
        self._supervise()
        self.injected["replay_waves"] = feeder.waves
        self.injected["replay_waves_killed"] = feeder.crashed_waves
        caught_up = self._wait_caught_up(last_fault)
        settled = self._wait_settled(last_fault)
        self.pipeline.stop()
        verdicts = Checker(self.common, feeder.ack_log).run()
        verdicts += self._runtime_verdicts(caught_up, settled, self._reprocessed())
        if self.gcs:
            counts = self.gcs.stats()["counts"]
            self.injected.update({f"proxy_{k}": v for k, v in counts.items()})
        return verdicts

    def _plan(self) -> list[tuple[str, str]]:
        """Every crash point and bucket fault mode once first, then every other kind, then random
        faults to the count."""
        plan = [("crash_point", p) for p in POINTS]
        if self.gcs:
            plan += [("bucket", mode) for mode in BUCKET_MODES]
        plan += [(k, "") for k in self.kinds if k not in ("crash_point", "bucket")]
        fixed = len(plan)
        while len(plan) < self.faults:
            plan.append((self.rng.choice(self.kinds), ""))
        return plan[: max(self.faults, fixed)]

    # -- faults -------------------------------------------------------------------------------

    def _inject(self, kind: str, target: str, feeder: Feeder) -> None:
        getattr(self, f"_fault_{kind}")(target or None, feeder)
        self.injected[kind] += 1

    def _fault_kill9(self, target: str | None, _: Feeder) -> None:
        service = target or self.rng.choice(SUPERVISED)
        time.sleep(self.rng.uniform(0, 1.5))  # a random moment
        self.pipeline.signal(service, signal.SIGKILL)
        self._note("kill9", service)
        self._check_catalog_reopens()

    def _fault_crash_point(self, target: str | None, feeder: Feeder) -> None:
        point = target or self.rng.choice(list(POINTS))
        service = point.split(".")[0]
        self._note("crash_point", point)
        if service == "producer":
            feeder.crash_next.set()
            return
        self.pipeline.stop_instance(service, grace_seconds=15)
        self.pipeline.start_instance(service, extra_env={CRASH_ENV: point})
        deadline = time.monotonic() + 30
        while self.pipeline.alive(service) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.pipeline.alive(service):  # no data reached the point: leave the crash armed off
            self.pipeline.stop_instance(service, grace_seconds=15)
            self._note("crash_point_not_reached", point)
        self._check_catalog_reopens()

    def _fault_sigstop(self, target: str | None, _: Feeder) -> None:
        """Freeze a replica past max.poll.interval while a second one takes its partitions over."""
        service = target or self.rng.choice(CONSUMERS)
        self.pipeline.start_instance(service, 1)
        time.sleep(2)
        self.pipeline.signal(service, signal.SIGSTOP)
        self._note("sigstop", service)
        time.sleep(MAX_POLL_INTERVAL_MS / 1000 + 3)
        self.pipeline.signal(service, signal.SIGCONT)
        time.sleep(3)  # the zombie wakes with its batch in hand: it must write nothing
        self.pipeline.stop_instance(service, 1)

    def _fault_sigterm(self, target: str | None, _: Feeder) -> None:
        service = target or self.rng.choice(SUPERVISED)
        self._note("sigterm", service)
        self.pipeline.stop_instance(service, grace_seconds=30)
        self.pipeline.start_instance(service)

    def _fault_scale(self, target: str | None, _: Feeder) -> None:
        service = target or self.rng.choice(CONSUMERS)
        self._note("scale", f"{service} 1->3->1")
        for i in (1, 2):
            self.pipeline.start_instance(service, i)
        time.sleep(self.rng.uniform(3, 6))
        for i in (2, 1):
            self.pipeline.stop_instance(service, i, grace_seconds=30)

    def _fault_bucket(self, target: str | None, _: Feeder) -> None:
        """For a few seconds a share of bucket requests fails, in one of the proxy's modes."""
        assert self.gcs is not None
        mode = target or self.rng.choice(BUCKET_MODES)
        fraction = round(self.rng.uniform(*BUCKET_FRACTION[mode]), 2)
        seconds = round(self.rng.uniform(3, 8), 1)
        self._note("bucket", f"{mode} {fraction:.0%} for {seconds}s")
        self.injected[f"bucket:{mode}"] += 1
        self.gcs.fault(mode, fraction, seconds)
        time.sleep(seconds)

    def _fault_broker_restart(self, _target: str | None, _: Feeder) -> None:
        self._note("broker_restart", "kafka")
        pid = self.broker.pid_file.read_text().strip()
        subprocess.run(["kill", "-9", pid], check=False)
        time.sleep(self.rng.uniform(1, 3))
        self.broker.start()

    # -- supervision and checks ---------------------------------------------------------------

    def _supervise(self) -> None:
        for service in SUPERVISED:
            if not self.pipeline.alive(service):
                self._note("restart", service)
                self.pipeline.start_instance(service)

    def _check_catalog_reopens(self) -> None:
        """I8 after every kill: the catalog attaches and answers."""
        try:
            con = warehouse.connect(self.common, read_only=True)
            con.execute("SELECT count(*) FROM transaction_fact").fetchone()
            con.close()
        except Exception as exc:
            self.violations.append(f"I8 catalog did not reopen after a kill: {exc}")

    def _wait_caught_up(self, since: float) -> float:
        """Seconds from the last fault until no stage has work left (I7: lag 0 within 60 s).

        Each stage's lag is read from what it made durable (pipeline_lag), a few broker round
        trips, so it is asked every second while the suite keeps supervising: a service that
        exits meanwhile is restarted at once, as Kubernetes would.
        """
        deadline = since + LIVENESS_SECONDS * 3
        while time.monotonic() < deadline:
            self._supervise()
            try:
                self.last_lags = self._lags()
            except Exception as exc:  # the broker may still be coming back: ask again
                self.last_lags = [StageLag("?", -1, f"not measured: {exc}")]
            else:
                # When each stage's lag last turned 0: the slowest one is what I7 waits for.
                now = time.monotonic() - since
                for lag in self.last_lags:
                    if lag.pending:
                        self.caught_up_at.pop(lag.stage, None)
                    else:
                        self.caught_up_at.setdefault(lag.stage, now)
                if all(lag.pending == 0 for lag in self.last_lags):
                    return now
            time.sleep(1)
        return time.monotonic() - since

    def _wait_settled(self, since: float) -> float:
        """Seconds from the last fault until a full count finds every event in its place.

        A count reads every zone file, which takes a while on gs://, so it runs on a worker
        thread while this one keeps supervising.
        """
        deadline = since + LIVENESS_SECONDS * 5
        with ThreadPoolExecutor(max_workers=1) as pool:
            while time.monotonic() < deadline:
                counting = pool.submit(self._count)
                while not counting.done():
                    self._supervise()
                    wait([counting], timeout=1)
                self.last_counts = counting.result()
                if self.last_counts.settled:
                    break
                time.sleep(1)
        return time.monotonic() - since

    def _lags(self) -> list[StageLag]:
        con = warehouse.connect(self.common, read_only=True)
        try:
            return stage_lags(con, self.common.bootstrap_servers, Topics(self.common.topic_prefix))
        finally:
            con.close()

    def _count(self) -> Reconciliation:
        counts, _ = current_counts(self.common)
        return counts

    def _reprocessed(self) -> int:
        """Validated events produced twice. The generator never repeats a transaction_id, so any
        row in transaction_duplicate is an event some stage processed and published twice."""
        con = warehouse.connect(self.common, read_only=True)
        try:
            row = con.execute("SELECT count(*) FROM transaction_duplicate").fetchone()
        finally:
            con.close()
        return int(row[0]) if row else 0

    def _runtime_verdicts(
        self, caught_up: float, settled: float, reprocessed: int
    ) -> list[Verdict]:
        sigstops = self.injected["sigstop"]
        terms = self.injected["sigterm"] + self.injected["scale"]
        in_place = self.last_counts is not None and self.last_counts.settled
        return [
            Verdict(
                "I7 liveness",
                caught_up <= LIVENESS_SECONDS and in_place,
                f"every stage's lag 0 {caught_up:.1f}s after the last fault (limit "
                f"{LIVENESS_SECONDS}s; {self._stages_caught_up()}){self._behind()}; "
                "every event counted in place after "
                f"{settled:.1f}s{self._unsettled()}",
            ),
            Verdict(
                "I9 zombies fenced",
                True,
                f"{sigstops} SIGSTOP faults with a replica taking over; I1/I2 hold the proof",
            ),
            Verdict(
                "I10 clean shutdown",
                reprocessed == 0,
                f"{terms} graceful stops and every kill; {reprocessed} events published twice",
            ),
            Verdict(
                "I8 catalog reopens after kills",
                not self.violations,
                "; ".join(self.violations) or "reopened after every kill",
            ),
        ]

    def _stages_caught_up(self) -> str:
        return "by stage: " + ", ".join(
            f"{stage} {at:.1f}s" for stage, at in self.caught_up_at.items()
        )

    def _behind(self) -> str:
        if all(lag.pending == 0 for lag in self.last_lags):
            return ""
        return "; last lag: " + ", ".join(f"{x.stage} {x.pending} {x.unit}" for x in self.last_lags)

    def _unsettled(self) -> str:
        c = self.last_counts
        if c is None or c.settled:
            return ""
        return (
            f"; last count: raw {c.events_in}, raw zone {c.raw_zone}, fact {c.fact_rows}, "
            f"duplicates {c.duplicates}, error zone {c.error_zone}, "
            f"unsummarized batches {c.unsummarized_batches}"
        )

    def _note(self, kind: str, target: str) -> None:
        self.log.append({"t": round(time.time(), 2), "fault": kind, "target": target})

    def _summary(self, verdicts: list[Verdict], seconds: float) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "seconds": round(seconds, 1),
            "faults_injected": sum(v for k, v in self.injected.items() if k in KINDS),
            "faults_by_kind": dict(self.injected),
            "invariants": {v.name: {"ok": v.ok, "detail": v.detail} for v in verdicts},
            "violations": [f"{v.name}: {v.detail}" for v in verdicts if not v.ok],
            "caught_up_by_stage": {k: round(v, 1) for k, v in self.caught_up_at.items()},
            "bucket": self.common.bucket_url,
            "catalog": self.catalog,
            "replay": f"python -m tests.faults.suite --faults {self.faults} --seed {self.seed}"
            f" --bucket {self.bucket} --catalog {self.catalog}",
            "log": self.log,
        }


def _free_port_base() -> int:
    from headrace.dev.infra.ports import free_port_block

    return free_port_block(40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--home", type=Path, default=Path(".headrace/faults"))
    parser.add_argument("--out", type=Path, default=None, help="Also write the summary here.")
    parser.add_argument(
        "--bucket",
        choices=("gs", "local"),
        default="gs",
        help="gs: the GCS emulator behind a fault proxy, with bucket faults; local: a folder.",
    )
    parser.add_argument(
        "--catalog",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="sqlite: a catalog file; postgres: a PostgreSQL server of the run's own.",
    )
    args = parser.parse_args(argv)
    from headrace.dev.infra.ports import free_port_block

    base = free_port_block(4)
    home = args.home.resolve() / f"seed-{args.seed}-{int(time.time())}"
    infra = InfraSettings(
        state_dir=home / "infra",
        kafka_port=base,
        kafka_controller_port=base + 1,
        kafka_metrics_port=base + 3,
        postgres_port=base + 2,
        kafka_heap="512m",
    )
    suite = FaultSuite(
        home, args.seed, args.faults, infra, bucket=args.bucket, catalog=args.catalog
    )
    summary = suite.run()
    text = json.dumps({k: v for k, v in summary.items() if k != "log"}, indent=2)
    print(text)
    (home / "summary.json").write_text(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(text)
    return 1 if summary["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())

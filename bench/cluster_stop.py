"""Stopping the local three-node Kafka cluster: every node at once, against one node after another.

Starts a cluster in a temporary state folder on free ports, stops it the way `infra stop` does
(SIGTERM to every node, then wait), starts it again and stops the nodes one by one (each
SIGTERM'd and waited for before the next, SIGKILL after `--grace` seconds), and prints when each
node was gone. One by one, the last node's controlled shutdown waits for a controller quorum that
the others took with them, and only SIGKILL ends it.

    .venv/bin/python -m bench.cluster_stop [--grace 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from headrace.dev.infra import processes
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.kafka_cluster import KafkaCluster
from headrace.dev.infra.ports import free_port_block


def at_once(cluster: KafkaCluster) -> float:
    started = time.monotonic()
    cluster.stop()
    return time.monotonic() - started


def one_by_one(cluster: KafkaCluster, grace: float) -> list[float]:
    started, gone = time.monotonic(), []
    for node in cluster.nodes:
        processes.stop(node.pid_file, grace_seconds=grace)
        gone.append(time.monotonic() - started)
    return gone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grace", type=float, default=60.0, help="SIGKILL after this long")
    grace = parser.parse_args().grace
    with tempfile.TemporaryDirectory(prefix="cluster-stop-") as state:
        base = free_port_block(6)
        infra = InfraSettings(
            state_dir=Path(state),
            kafka_port=base,
            kafka_controller_port=base + 1,
            kafka_metrics_port=free_port_block(21),
        )
        cluster = KafkaCluster(infra)
        try:
            cluster.start()
            print(f"at once: {at_once(cluster):.1f} s")
            cluster.start()
            gone = one_by_one(cluster, grace)
            print(
                "one by one: "
                + ", ".join(f"node {i} gone at {t:.1f} s" for i, t in enumerate(gone, 1))
            )
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()

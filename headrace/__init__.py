"""headrace: a Kafka-native streaming warehouse.

This package is the machinery every service shares: settings, Kafka client factories, the wire
format and schema registry, the bucket filesystem, warehouse access, and the health/metrics server.
The services themselves live in the top-level ``services`` package.
"""

__version__ = "0.1.0"

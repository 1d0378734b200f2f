"""Wire formats: Avro columns, the Confluent framing, the schema registry, raw bytes."""

"""validator: raw -> validated (Avro) or error (envelope), in one Kafka transaction per batch."""

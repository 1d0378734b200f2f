"""Kafka machinery: client factories, topics, the consumer loop, batch workers and lag."""

"""Local infrastructure run by the project's own scripts: a real Kafka broker, a GCS emulator,
PostgreSQL for the catalog."""

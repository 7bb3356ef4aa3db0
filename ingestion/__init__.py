"""Ingestion: the event contract, the schema registry, the simulator and the Kafka producer."""

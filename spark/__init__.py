"""Spark jobs: the Kafka -> lake stream, the daily compaction batch, lake maintenance."""

"""A Spark 4 Python streaming data source that reads Kafka through confluent-kafka.

pyspark's wheel carries no Kafka connector jar and none can be downloaded here, so the stream
reads Kafka itself: offsets live only in Spark's checkpoint (offsets/ and commits/), never in a
consumer group, which is what makes a restarted query resume exactly where it stopped.

Rows have the shape of Spark's native `kafka` source (key, value, topic, partition, offset,
timestamp), so everything downstream is the same whichever source is configured.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)
from pyspark.sql.types import StructType

SOURCE_NAME = "orangescrum_kafka"
KAFKA_ROW_SCHEMA = (
    "key binary, value binary, topic string, partition int, offset bigint, timestamp timestamp"
)
_ARROW_ROW_SCHEMA = pa.schema(
    [
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
    ]
)
# Options that are not librdkafka settings; everything under "kafka." is passed through.
OPTION_TOPIC = "subscribe"
OPTION_MAX_OFFSETS = "maxoffsetspertrigger"
OPTION_READ_TIMEOUT = "readtimeoutseconds"
ARROW_BATCH_ROWS = 10_000

Offsets = dict[str, int]  # Kafka partition number (as a JSON-safe string) -> next offset to read


class TopicResetError(RuntimeError):
    """The checkpoint remembers offsets beyond the topic's end: the topic was recreated."""


@dataclass(frozen=True)
class KafkaRange(InputPartition):
    topic: str
    partition: int
    start: int
    end: int


def client_config(options: dict[str, str]) -> dict[str, Any]:
    config = {k.removeprefix("kafka."): v for k, v in options.items() if k.startswith("kafka.")}
    return config | {
        # assign() never joins the group; librdkafka still wants an id.
        "group.id": "orangescrum-spark-reader",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        # Answer fetches at once instead of waiting up to 500 ms for more data.
        "fetch.wait.max.ms": 10,
        "log_level": 3,
    }


def find_end_offsets(consumer: Any, topic: str, partitions: Sequence[int]) -> Offsets:
    """True end offset of each partition.

    The high watermark alone is not trusted: some Kafka-compatible brokers (Tansu) report the
    base offset of the last record batch + 1. Re-reading from watermark - 1 to EOF costs one batch
    on such brokers and a single record on Apache Kafka, and is exact on both.
    """
    from confluent_kafka import KafkaError, TopicPartition

    ends: Offsets = {}
    probes = []
    for partition in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        ends[str(partition)] = high
        if high > low:
            probes.append(TopicPartition(topic, partition, max(high - 1, low)))
    if not probes:
        return ends
    consumer.assign(probes)
    pending = {tp.partition for tp in probes}
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        # A short poll: the probe reads at most one record batch per partition.
        for message in consumer.consume(num_messages=10_000, timeout=0.05):
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
            elif error is None:
                key = str(message.partition())
                ends[key] = max(ends[key], message.offset() + 1)
    consumer.unassign()
    if pending:
        raise TimeoutError(f"no end of partitions {sorted(pending)} of {topic} found within 30s")
    return ends


def cap_offsets(start: Offsets, end: Offsets, max_rows: int) -> Offsets:
    """Spread a row budget over partitions in proportion to their backlog, always progressing.

    Largest remainders take the rows that flooring leaves over, so a batch uses its whole
    budget: flooring alone split 200,000 records under a 50,000 budget into four batches and
    a fifth of 7 records, which paid a whole trigger of its own.
    """
    backlog = {p: end[p] - start.get(p, 0) for p in end}
    total = sum(backlog.values())
    if total <= max_rows:
        return dict(end)
    shares = {p: backlog[p] * max_rows // total for p in end}
    by_remainder = sorted(
        end, key=lambda p: (-(backlog[p] * max_rows % total), -backlog[p], int(p))
    )
    for partition in by_remainder[: max_rows - sum(shares.values())]:
        shares[partition] += 1
    return {p: start.get(p, 0) + shares[p] for p in end}


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, options: dict[str, str]) -> None:
        self.options = dict(options)
        self.topic = options[OPTION_TOPIC]
        self.max_rows = int(options.get(OPTION_MAX_OFFSETS, "0")) or None
        self._target: Offsets | None = None
        self._consumer: Any = None

    # The driver-side consumer is created lazily: the reader object is pickled to the
    # Python worker that plans batches, and librdkafka handles do not pickle.
    def _driver_consumer(self) -> Any:
        if self._consumer is None:
            from confluent_kafka import Consumer

            self._consumer = Consumer(client_config(self.options))
        return self._consumer

    def _partitions(self) -> list[int]:
        metadata = self._driver_consumer().list_topics(self.topic, timeout=10).topics[self.topic]
        if metadata.error is not None:
            raise RuntimeError(f"topic {self.topic!r} is not readable: {metadata.error}")
        return sorted(metadata.partitions)

    def _latest(self) -> Offsets:
        return find_end_offsets(self._driver_consumer(), self.topic, self._partitions())

    def initialOffset(self) -> Offsets:
        from confluent_kafka import TopicPartition

        consumer = self._driver_consumer()
        return {
            str(p): consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[0]
            for p in self._partitions()
        }

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_rows) if self.max_rows else ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = self._latest()

    def latestOffset(self, start: Offsets, limit: ReadLimit) -> Offsets:
        end = self._target if self._target is not None else self._latest()
        for partition, offset in start.items():
            if partition in end and offset > end[partition]:
                raise TopicResetError(
                    f"the checkpoint has read {self.topic}[{partition}] up to offset {offset}, "
                    f"but the topic ends at {end[partition]}: the topic was recreated. Point "
                    "ORANGESCRUM_CHECKPOINT_DIR at a fresh folder (or delete the old one)."
                )
        # Partitions added since the last batch start at their beginning.
        end = {p: max(end[p], start.get(p, 0)) for p in end}
        if isinstance(limit, ReadMaxRows):
            return cap_offsets(start, end, limit.max_rows)
        return end

    def reportLatestOffset(self) -> Offsets | None:
        return self._latest()

    def partitions(self, start: Offsets, end: Offsets) -> Sequence[InputPartition]:
        return [
            KafkaRange(self.topic, int(p), start.get(p, 0), end[p])
            for p in sorted(end, key=int)
            if end[p] > start.get(p, 0)
        ]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        assert isinstance(partition, KafkaRange)
        yield from read_range(
            client_config(self.options),
            partition,
            float(self.options.get(OPTION_READ_TIMEOUT, "120")),
        )

    def commit(self, end: Offsets) -> None:
        # Offsets are already durable in Spark's commit log; Kafka needs no acknowledgement.
        return None

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def read_range(
    config: dict[str, Any], kafka_range: KafkaRange, timeout_seconds: float
) -> Iterator[pa.RecordBatch]:
    """Yield the records of [start, end) of one partition as Arrow batches."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer(config)
    consumer.assign([TopicPartition(kafka_range.topic, kafka_range.partition, kafka_range.start)])
    columns: dict[str, list[Any]] = {name: [] for name in _ARROW_ROW_SCHEMA.names}
    last_progress = time.monotonic()
    position = kafka_range.start
    try:
        while position < kafka_range.end:
            # consume() returns early only once it holds num_messages: asking for no more
            # than the range still owes lets the last call return as soon as the range is
            # complete, instead of waiting out its timeout (~1 s per task and batch).
            wanted = min(ARROW_BATCH_ROWS, kafka_range.end - position)
            messages = consumer.consume(num_messages=wanted, timeout=1.0)
            if not messages and time.monotonic() - last_progress > timeout_seconds:
                raise TimeoutError(
                    f"no records from {kafka_range.topic}[{kafka_range.partition}] at offset "
                    f"{position} for {timeout_seconds:.0f}s (expected up to {kafka_range.end})"
                )
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        # The end may sit past the last record (transaction markers).
                        if message.offset() >= kafka_range.end:
                            position = kafka_range.end
                        continue
                    raise RuntimeError(f"Kafka read failed: {error}")
                if message.offset() >= kafka_range.end:
                    position = kafka_range.end
                    break
                last_progress = time.monotonic()
                position = message.offset() + 1
                _timestamp_type, timestamp_ms = message.timestamp()
                columns["key"].append(message.key())
                columns["value"].append(message.value())
                columns["topic"].append(message.topic())
                columns["partition"].append(message.partition())
                columns["offset"].append(message.offset())
                columns["timestamp"].append(timestamp_ms * 1000 if timestamp_ms > 0 else None)
            if len(columns["offset"]) >= ARROW_BATCH_ROWS:
                yield pa.RecordBatch.from_pydict(columns, schema=_ARROW_ROW_SCHEMA)
                columns = {name: [] for name in _ARROW_ROW_SCHEMA.names}
        if columns["offset"]:
            yield pa.RecordBatch.from_pydict(columns, schema=_ARROW_ROW_SCHEMA)
    finally:
        consumer.close()


class KafkaDataSource(DataSource):
    """`spark.readStream.format("orangescrum_kafka").option("subscribe", topic)...`"""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return KAFKA_ROW_SCHEMA

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return KafkaStreamReader(self.options)

"""Prometheus metrics of the platform, defined once and shared by every component.

Labels are bounded: `topic` takes the topics a process writes to (a deployment has a few),
`error` takes exception class names, which form a closed set.

Producer side (`Publisher`, the producer service and the produce CLI):

- `streams_producer_messages_total{topic}`: records acknowledged by Kafka.
- `streams_producer_bytes_total{topic}`: key + value bytes of acknowledged records.
- `streams_producer_send_latency_seconds{topic}`: from `publish` to the acknowledgement,
  including retries.
- `streams_producer_records_per_request`: records in one `publish_many` call or HTTP request.
- `streams_producer_errors_total{topic,error}`: records given up on, by exception class.
- `streams_producer_retries_total{topic}`: attempts after the first.

Consumer side (batch agents):

- `streams_consumer_messages_total{agent,topic}`: records whose batch finished (handled or
  dead-lettered) and was acknowledged.
- `streams_consumer_batch_size{agent}`: records per batch handed to the handler.
- `streams_consumer_batch_seconds{agent}`: handler time per batch, retries included.
- `streams_consumer_retries_total{agent}`: handler attempts after the first.
- `streams_consumer_dead_letters_total{topic,error}`: records sent to `<topic>.dlq`.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PRODUCER_MESSAGES = Counter(
    "streams_producer_messages_total", "Records acknowledged by Kafka", ["topic"]
)
PRODUCER_BYTES = Counter(
    "streams_producer_bytes_total", "Key and value bytes of acknowledged records", ["topic"]
)
PRODUCER_SEND_LATENCY = Histogram(
    "streams_producer_send_latency_seconds",
    "Time from publish to acknowledgement, retries included",
    ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PRODUCER_RECORDS_PER_REQUEST = Histogram(
    "streams_producer_records_per_request",
    "Records in one publish_many call or HTTP produce request",
    buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000),
)
PRODUCER_ERRORS = Counter(
    "streams_producer_errors_total", "Records that could not be published", ["topic", "error"]
)
PRODUCER_RETRIES = Counter(
    "streams_producer_retries_total", "Publish attempts after the first", ["topic"]
)

CONSUMER_MESSAGES = Counter(
    "streams_consumer_messages_total", "Records processed and acknowledged", ["agent", "topic"]
)
CONSUMER_BATCH_SIZE = Histogram(
    "streams_consumer_batch_size", "Records per batch handed to the handler", ["agent"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 10000),
)
CONSUMER_BATCH_SECONDS = Histogram(
    "streams_consumer_batch_seconds", "Handler time per batch, retries included", ["agent"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONSUMER_RETRIES = Counter(
    "streams_consumer_retries_total", "Handler attempts after the first", ["agent"]
)
DEAD_LETTERS = Counter(
    "streams_consumer_dead_letters_total", "Records sent to the dead-letter topic",
    ["topic", "error"],
)

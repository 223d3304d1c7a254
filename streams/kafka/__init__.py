"""Kafka as a client: topic administration, the publisher, the partitioner, partition reads."""

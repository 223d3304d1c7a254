"""The commands beside Faust's `worker`: producer, produce, dlq replay."""

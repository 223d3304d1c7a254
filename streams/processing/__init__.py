"""Records to handlers: batch agents, batches, models, retries, dead letters, exactly-once."""

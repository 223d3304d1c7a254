"""Per-key state on RocksDB: per-key and windowed tables, batch writes, scans, recovery."""

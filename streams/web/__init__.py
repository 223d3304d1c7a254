"""HTTP surfaces: probes, table views, the dashboard and its API, the producer service."""

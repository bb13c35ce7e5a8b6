"""A run's metrics.json: written atomically by the trainer, read by `olmix results`."""

METRICS_FILE = "metrics.json"

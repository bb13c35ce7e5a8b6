"""The results stage: a group's finished runs as a table, JSON, CSV or a plot."""

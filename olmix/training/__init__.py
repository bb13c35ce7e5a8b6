"""The training stage: what runs in the trainer's process (`python -m olmix.train`), with the `train` extra.

trainer (one run's settings, training and metrics document), olmocore (the bridge to
OLMo-core's mixture, models and trainer), heldout (loss on each leaf's held-out
tokens), metrics (metrics.json through its schema).
"""

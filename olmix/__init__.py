"""olmix: pretraining data-mixture experiments from a validated YAML spec."""

__version__ = "0.1.0"

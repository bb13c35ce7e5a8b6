"""The Slurm backend: the batch script (script), what Slurm says of the runs (query) and the backend itself
(backend). `olmix.backends.slurm:SlurmBackend` is what a launch builds."""

from olmix.backends.slurm.backend import SlurmBackend, filesystem_type, options_from_config
from olmix.backends.slurm.query import Job, map_state
from olmix.backends.slurm.script import CHECKPOINT_INTERVAL, SCRIPT

__all__ = [
    "CHECKPOINT_INTERVAL",
    "SCRIPT",
    "Job",
    "SlurmBackend",
    "filesystem_type",
    "map_state",
    "options_from_config",
]

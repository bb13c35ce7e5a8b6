"""The study stage: quality-threshold studies and the experiment configs they generate."""

"""The mixture-optimization loop: sample a swarm, collect its evidence, fit and propose.

sampler: mixtures drawn around a config's prior (pure Python, core install).
evidence: runs' leaf weights and metrics as rows, CSV in the upstream layout.
fit / propose: the mixing law and the proposal (numpy/scipy, the `fit` extra).
"""

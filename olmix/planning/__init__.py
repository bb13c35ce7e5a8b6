"""The planning stage: from a loaded config to a launch plan (resolve, weigh, budget, check)."""

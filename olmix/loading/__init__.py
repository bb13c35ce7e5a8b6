"""Loading a config, in the order a file goes through it.

inputs (bounded regular files) → configfiles (which files a command was
given) → yamlsource (YAML with the position of every key and value) →
overrides (`--set`) → schemacheck (the JSON Schema, in a researcher's words) →
rules (what the schema cannot state) → config (all of it for one file, and the
generated model) and validation (`olmix validate`: each file's schema chosen as
an editor chooses it).
"""

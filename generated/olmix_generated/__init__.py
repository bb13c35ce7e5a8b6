"""Models generated from schema/ by datamodel-code-generator. Do not edit."""

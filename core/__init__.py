"""Leaf package: records, config models, registries, errors and logging shared by every stage.

It imports nothing else of narrawatch's (checked by import-linter).
"""

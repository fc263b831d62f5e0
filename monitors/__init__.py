"""Watching the index: narrative matching, detectors, spread tracing, emerging themes."""

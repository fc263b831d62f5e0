"""Elasticsearch index template and mapping JSON (data files; a package so wheels include them)."""

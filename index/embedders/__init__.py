"""Embedder implementations; importing this package registers them in index.embed.EMBEDDERS."""

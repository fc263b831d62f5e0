"""Embedding and document indexing: the Embedder and DocumentIndex seams and their backends."""

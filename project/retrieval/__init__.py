"""Sentence embeddings and Faiss similarity search (`python -m project.embed`, `python -m project.search`)."""

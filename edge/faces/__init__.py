"""Faces: YuNet detection, SFace embeddings, per-track best face and identity, privacy."""

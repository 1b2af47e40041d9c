"""Persistence: the database, model files and checkpoints."""

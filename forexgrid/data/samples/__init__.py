"""The bundled real market-data sample and its licence notice (package data)."""

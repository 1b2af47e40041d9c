"""Alembic migrations of the forexgrid database (configured in code, no alembic.ini)."""

"""The papermill template notebooks, installed with forexgrid as ``forexgrid.templates``.

``train_config.ipynb`` is what ``forexgrid batch`` (and ``ws.run(..., backend="papermill")``)
runs for each configuration unless ``execution.notebook`` names another (docs/batch.md).
It lives in notebooks/templates/ so that a source checkout shows it beside the example
notebooks; pyproject.toml maps this folder to the package so that a pip install has it too.
"""

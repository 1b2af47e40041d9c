"""The papermill templates in templates/ are not example notebooks: nbval must not execute
them.

pytest's testpaths include notebooks/ (with --nbval-lax), which would run
templates/train_config.ipynb with its placeholder parameters (no workspace, no queue) and
fail. The template is executed for real, with a queue's parameters, by tests/test_batch.py.
(This file sits here, not in templates/, because templates/ is installed as the package
``forexgrid.templates``.)
"""

collect_ignore = ["templates"]

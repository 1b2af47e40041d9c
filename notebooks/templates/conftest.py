"""The papermill templates here are not example notebooks: nbval must not execute them.

pytest's testpaths include notebooks/ (with --nbval-lax), which would run
train_config.ipynb with its placeholder parameters (no workspace, no queue) and fail. The
template is executed for real, with a queue's parameters, by tests/test_batch.py.
"""

collect_ignore_glob = ["*.ipynb"]

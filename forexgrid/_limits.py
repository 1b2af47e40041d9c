"""The ranges of forexgrid's numbers, defined once.

The configuration models (:mod:`forexgrid.config`), the grid's field checks
(:mod:`forexgrid._grid_fields`, used by ``TrainingConfig`` and ``GridSpec``) and the model
factory (:mod:`forexgrid.core.models`) read their bounds from here, so ``forexgrid config
check``, the flags of ``forexgrid run`` and the library refuse the same values with the same
words. ``docs/configuration.md`` lists every range; a test checks that they agree.

Each bound is far beyond any sensible value and well inside what the code below it can
handle: 64-bit database integers, :class:`datetime.timedelta` and pandas timestamps (about
292 years), C ``int`` parameters of the model libraries, memory for trailing windows, and
the running time of combinatorial statistics.
"""

from __future__ import annotations

__all__ = [
    "INT32_MAX",
    "INT32_MIN",
    "MAX_DAYS",
    "MAX_ESTIMATORS",
    "MAX_GRID_SIZE",
    "MAX_HORIZON",
    "MAX_IMPORT_MB",
    "MAX_SYMBOL_LENGTH",
    "MAX_WINDOW",
    "MAX_WORKERS",
    "SEED_MAX",
]

# Calendar days (history, validation, test, retention): 100 years.
MAX_DAYS = 36_500
# Bars ahead a model predicts: beyond this the recursive method runs for hours and no data
# set of a trainable timeframe leaves bars to evaluate.
MAX_HORIZON = 1_000
# Bars in any trailing window (features, regimes, lookbacks): the percentile rank compares
# blocks of 4096 x window values, 330 MB at this bound.
MAX_WINDOW = 10_000
# Configurations one queue may hold (execution.max_grid_size): keeps queue_index well inside
# a 32-bit integer.
MAX_GRID_SIZE = 100_000_000
# Worker processes, parallel queues and inference workers.
MAX_WORKERS = 1_024
# numpy, xgboost and lightgbm all accept seeds in 0 .. 2**32 - 1.
SEED_MAX = 2**32 - 1
# Integer hyperparameters reach the model libraries as C ints.
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
# Trees of an ensemble: a million-tree forest takes days; a typo of a few zeros must not.
MAX_ESTIMATORS = 100_000
# Characters of a symbol: it names a folder of the data store.
MAX_SYMBOL_LENGTH = 20
# Largest market-data file `data import` reads, in MB (1 TiB); the default is far lower.
MAX_IMPORT_MB = 1_048_576

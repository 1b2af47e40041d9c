"""Pure computation (no files, no database): features, models, splits, regimes, inference, backtest, stats, selection."""

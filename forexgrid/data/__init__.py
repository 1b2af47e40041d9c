"""Market data: reading, validating, resampling, storing; the bundled sample; synthetic bars."""

"""Statistics for the evaluation: aggregates only, small cells suppressed."""

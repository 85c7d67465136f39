"""Indicators: definitions, donor crosswalk, disaggregations, targets, results, progress and ratings."""

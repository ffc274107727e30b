"""Matching: explainable scores, suggestions, cohort runs and the match lifecycle."""

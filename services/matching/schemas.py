"""Matching wire models: suggestions, matches and runs arrive with their routes."""

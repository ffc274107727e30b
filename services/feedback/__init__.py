"""Feedback: feedback requests, goals, tracks, agreements and program analytics."""

"""Feedback wire models: requests, answers, goals and analytics arrive with their routes."""

"""Profiles: organizations, people (HRIS employees), programs and enrollments."""

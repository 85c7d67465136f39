"""Deadlines and reminders: what is due when, and reminders that arrive exactly once."""

"""Closing a reporting period: its checklist, its submission to the donor, and the period page."""

"""Funders, grants, members and reporting periods: the records every other domain hangs on."""

"""Pure workbook code: read, inspect, fill and recompute .xlsx packages, knowing nothing of grants or the database."""

"""Tests of the pure workbook code in exports/xlsx."""

"""Compliance: requirements per grant, the rules that give each a status per period, waivers and presets."""

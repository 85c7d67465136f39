"""Settings classes and role definitions for Grantkeeper."""

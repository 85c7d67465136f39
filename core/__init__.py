"""The kernel every Grantkeeper package builds on: money, the clock, periods, records and
validation, errors, the file store, the audit trail, the database extension, form validators
and the one registry through which domains contribute to each other. It imports no domain."""

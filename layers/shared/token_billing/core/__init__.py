"""The vocabulary every layer shares: units, errors and the observability instruments."""

"""Prepaid token billing: the shared package every function imports from the layer."""

"""Metric families: compose windowed statistics over observations into the values of a record."""

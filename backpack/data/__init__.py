"""Interactions from files (CSV, JSON lines), packaged data sets and synthetic catalogues."""

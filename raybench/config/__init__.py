"""Typed configuration: names, system files and run settings."""

"""Torch-free domain shared by the web tier and the worker."""

"""Shared media helpers: the one place that decodes and encodes containers."""

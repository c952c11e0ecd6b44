"""Benchmarks run by hand against a real hub process (not part of CI). See bench/README.md."""

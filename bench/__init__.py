"""Benchmarks for catalog-updater (`make bench`); each writes its numbers to bench/RESULTS.md."""

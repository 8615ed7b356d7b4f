"""Benchmarks (`make bench`). Each writes bench/results/<name>.json; targets are checked
here and reported, never asserted in tests."""

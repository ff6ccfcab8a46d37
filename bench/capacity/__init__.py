"""The capacity bench (issue 13): see bench/capacity.py and bench/README.md."""

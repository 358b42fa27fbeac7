"""Conformance tier: its drills' figures go to tests/conformance/report.py, which the root
conftest prints after the test results (with the prod tier's)."""

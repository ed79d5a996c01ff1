"""Tests of the mesh-test package; run them with scripts/test-scripts."""

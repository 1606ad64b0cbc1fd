"""End-to-end runs and the demo (front end)."""

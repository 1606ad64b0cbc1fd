"""The `keel` command: a thin shell over the library (front end)."""

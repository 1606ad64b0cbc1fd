"""Public conformance suites for plugins: a new strategy, detector or store passes the same checks
as the built-in ones (e.g. :func:`keelml.testing.strategies.check_strategy`)."""

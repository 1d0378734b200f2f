"""Errors an operator can fix. The CLI prints them as one line, without a traceback."""


class OperatorError(Exception):
    """A mistake in configuration or environment; the message says what to do."""

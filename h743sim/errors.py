"""Errors shown to the user as one line (no traceback) by the command line."""


class UserError(Exception):
    """Bad input or a failed run, explained in the message."""

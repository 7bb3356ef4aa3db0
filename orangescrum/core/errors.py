"""Errors a user can act on: each message names what failed and what to do about it."""


class OrangeScrumError(Exception):
    """A failure with a one-sentence explanation for the person at the terminal."""

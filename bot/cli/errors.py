"""UserError: a problem the user can fix, which bot.cli.main prints as one line (exit status 1).

On its own so that every command module can raise it without importing the command line itself.
"""


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit status 1."""

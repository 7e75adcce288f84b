"""Exception types shared across the package."""


class InputError(ValueError):
    """Bad input from a user (a file, an argument, an array): the CLI prints the message alone
    and exits with status 2.  Messages name what is wrong and where."""


class ConvergenceError(RuntimeError):
    """An iterative computation (e.g. pose from legs) did not converge; the message says where."""

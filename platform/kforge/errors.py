"""User-facing errors: every message says what is wrong and what to do about it."""


class KforgeError(Exception):
    """Base class for errors that are shown to users as-is (no traceback)."""


class InputError(KforgeError):
    """Something a user supplied (a path, a file, a row, a config value) is wrong."""


class NotARepositoryError(InputError):
    """A path given as a git repository is not one."""


class StorageError(KforgeError):
    """The warehouse or the model store could not be written or read."""

"""Exception hierarchy of the core package."""

from __future__ import annotations


class HumansegError(Exception):
    """Base class of every error raised on purpose by humanseg."""


class ConfigError(HumansegError):
    """A setting is missing or malformed."""


class StorageError(HumansegError):
    """Reading or writing an object failed (may be transient)."""


class ObjectNotFound(StorageError):
    """The key does not exist in storage."""


class InvalidKey(StorageError, ValueError):
    """A storage key is malformed (absolute, traversal, odd characters)."""


class ImageError(HumansegError):
    """An upload is not an acceptable image; carries an API code and status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

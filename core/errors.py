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
    """An upload is not an acceptable image; `code` names the reason (the web tier maps it to HTTP)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

"""Encryption of user tokens at rest (Fernet).

The key comes from `GHMETRICS_SECRET_KEY`, or from `$GHMETRICS_HOME/secret.key`, generated
on first use with mode 0600.
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken

from ghmetrics_dagster import settings


class SecretKeyError(RuntimeError):
    pass


def _key() -> bytes:
    env_key = os.environ.get("GHMETRICS_SECRET_KEY")
    if env_key:
        return env_key.encode()
    path = settings.home() / "secret.key"
    if not path.exists():
        # O_EXCL: two processes creating the key at once must not write different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes().strip()
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
    return path.read_bytes().strip()


def _fernet() -> Fernet:
    try:
        return Fernet(_key())
    except ValueError:
        raise SecretKeyError(
            "GHMETRICS_SECRET_KEY is not a valid Fernet key; generate one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
        ) from None


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretKeyError(
            "a stored token cannot be decrypted with the current secret key; "
            "restore the key it was stored with or add the user again with --token-stdin"
        ) from None

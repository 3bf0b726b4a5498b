"""Encryption of user tokens at rest (Fernet, several keys via MultiFernet).

A `Keyring` holds the keys of `GHMETRICS_SECRET_KEY` (comma-separated, newest first) or of
`$GHMETRICS_HOME/secret.key` (one key a line, newest first, mode 0600); `keyring(settings)`
builds the one those settings name. The newest key
encrypts; every key decrypts. Each ciphertext is stored as `kid:<key id>:<fernet token>`, so a
missing or wrong key is named by its id. The key file is created only while no token is stored:
a missing file with stored tokens is an error, never a silent new key that orphans them.
`rotate` re-encrypts every stored token under a new key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ghmetrics_dagster.warehouse import app_data

ENV_VAR = "GHMETRICS_SECRET_KEY"
_PREFIX = "kid:"
_GENERATE = "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"


class SecretKeyError(RuntimeError):
    pass


def key_id(key: bytes) -> str:
    """A short, public name of a key (a hash prefix: it reveals nothing about the key)."""
    return hashlib.sha256(key.strip()).hexdigest()[:12]


def _parse(keys: list[bytes], source: str) -> list[Fernet]:
    if not keys:
        raise SecretKeyError(
            f"{source} is empty; restore the key file from your backup (or set {ENV_VAR}); "
            "without it the stored tokens cannot be decrypted"
        )
    try:
        return [Fernet(k) for k in keys]
    except ValueError:
        raise SecretKeyError(f"{source} is not a valid Fernet key; generate one with {_GENERATE}") from None


def _write_keys(path: Path, keys: list[bytes]) -> None:
    """Atomically replaces the key file (0600): a crash leaves the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"\n".join(keys) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def stored_key_ids(cur) -> dict[str, int]:
    """Key id -> number of stored tokens encrypted with it ("unknown" for ones stored before ids)."""
    counts: dict[str, int] = {}
    for ciphertext in app_data.stored_token_ciphertexts(cur):
        kid = _split(ciphertext)[0] or "unknown"
        counts[kid] = counts.get(kid, 0) + 1
    return counts


def _split(ciphertext: str) -> tuple[str | None, str]:
    if ciphertext.startswith(_PREFIX):
        kid, _, token = ciphertext[len(_PREFIX) :].partition(":")
        return kid, token
    return None, ciphertext


def _seal(primary: bytes, token: bytes) -> str:
    return f"{_PREFIX}{key_id(primary)}:{token.decode()}"


@dataclasses.dataclass(frozen=True)
class Keyring:
    """The keys that encrypt stored tokens: `env_keys` (GHMETRICS_SECRET_KEY) when set, else the
    key file (created while no token is stored)."""

    env_keys: str | None = dataclasses.field(repr=False)
    key_file: Path

    @property
    def source(self) -> str:
        return ENV_VAR if self.env_keys else str(self.key_file)

    def load_keys(self, create: bool = False) -> list[bytes]:
        """The keys, newest first. With `create`, a missing key file is created with a new key."""
        if self.env_keys:
            keys = [k.strip().encode() for k in self.env_keys.split(",") if k.strip()]
            _parse(keys, ENV_VAR)
            return keys
        path = self.key_file
        if not path.exists():
            if not create:
                raise SecretKeyError(
                    f"the secret key file {path} is missing; restore it from your backup (or set {ENV_VAR}) "
                    "so the stored tokens can be decrypted"
                )
            # O_EXCL: two processes creating the key at once must not write different keys.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(Fernet.generate_key() + b"\n")
        keys = [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
        _parse(keys, str(path))
        return keys

    def encrypt(self, secret: str, cur=None) -> str:
        """`secret` encrypted under the newest key. With a cursor on the warehouse, the key file is
        created only if no token is stored yet; without one it is created if missing."""
        if cur is not None and not self.env_keys and not self.key_file.exists():
            stored = stored_key_ids(cur)
            if stored:
                ids = ", ".join(sorted(stored))
                raise SecretKeyError(
                    f"the secret key file {self.key_file} is missing but {sum(stored.values())} stored token(s) were "
                    f"encrypted with key {ids}; restore the file (or set {ENV_VAR}) instead of creating a new key"
                )
        keys = self.load_keys(create=True)
        return _seal(keys[0], Fernet(keys[0]).encrypt(secret.encode()))

    def decrypt(self, ciphertext: str) -> str:
        keys = self.load_keys()
        kid, token = _split(ciphertext)
        try:
            return MultiFernet(_parse(keys, self.source)).decrypt(token.encode()).decode()
        except InvalidToken:
            known = {key_id(k) for k in keys}
            which = f"key {kid}, which is not in {self.source}" if kid and kid not in known else "a key that is not current"
            raise SecretKeyError(
                f"a stored token cannot be decrypted: it was encrypted with {which}; restore that key "
                "or add the user again with --token-stdin"
            ) from None

    def rotate(self, conn) -> tuple[int, str]:
        """Re-encrypts every stored token under a new key; returns (tokens re-encrypted, new key id).

        With the key file: a new key is put first (old ones kept until the tokens are re-encrypted
        and committed, so a crash loses nothing), then the old keys are dropped. With
        GHMETRICS_SECRET_KEY the caller puts the new key first and removes the old ones after."""
        from_env = bool(self.env_keys)
        with conn.cursor() as cur:
            if not from_env and not self.key_file.exists() and stored_key_ids(cur):
                self.load_keys()  # raises: the key file is missing
            old = self.load_keys(create=True)
            keys = old if from_env else [Fernet.generate_key(), *old]
            if not from_env:
                _write_keys(self.key_file, keys)
            fernet = MultiFernet(_parse(keys, self.source))
            updated = []
            for login, ciphertext in app_data.lock_token_ciphertexts(cur):
                _, token = _split(ciphertext)
                try:
                    fresh = fernet.rotate(token.encode())
                except InvalidToken:
                    raise SecretKeyError(
                        f"the stored token of {login} cannot be decrypted with any key in {self.source}; "
                        "restore its key or add the user again with --token-stdin, then rotate"
                    ) from None
                updated.append((_seal(keys[0], fresh), login))
            app_data.replace_token_ciphertexts(cur, updated)
        conn.commit()
        if not from_env:
            _write_keys(self.key_file, keys[:1])
        return len(updated), key_id(keys[0])


def keyring(settings) -> Keyring:
    """The keyring `settings` (a Settings) name."""
    return Keyring(settings.secret_keys, settings.home() / "secret.key")

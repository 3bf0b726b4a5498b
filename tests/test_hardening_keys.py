"""Finding 5: key ids, rotation, and no silent new key (real Postgres, the CLI as users run it)."""

from __future__ import annotations

import stat

import pytest
from click.testing import CliRunner
from conftest import env_settings
from cryptography.fernet import Fernet

from ghmetrics_dagster import warehouse
from ghmetrics_dagster.cli import main
from ghmetrics_dagster.core import secrets

TOKEN_A = "ghp_" + "A1b2C3d4E5" * 4
TOKEN_B = "ghp_" + "F6g7H8i9J0" * 4


def invoke(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def stored(database_url) -> dict[str, str]:
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("select login, token_ciphertext from app.users where token_ciphertext is not null")
        return dict(cur.fetchall())


def test_missing_key_file_with_stored_tokens_is_an_error_not_a_new_key(database_url, home, monkeypatch):
    monkeypatch.delenv(secrets.ENV_VAR, raising=False)
    assert invoke("users", "add", "alice", "--token-stdin", input=TOKEN_A + "\n").exit_code == 0
    key_file = home / "secret.key"
    kid = secrets.key_id(key_file.read_bytes().splitlines()[0])
    key_file.unlink()
    result = invoke("users", "add", "bob", "--token-stdin", input=TOKEN_B + "\n")
    assert result.exit_code == 1
    assert "missing" in result.output and kid in result.output and result.output.count("\n") == 1, result.output
    assert not key_file.exists() and "bob" not in stored(database_url)
    with pytest.raises(secrets.SecretKeyError, match="missing"):
        secrets.keyring(env_settings()).decrypt(stored(database_url)["alice"])


def test_empty_key_file_is_named_as_the_file_not_the_environment_variable(home, monkeypatch):
    monkeypatch.delenv(secrets.ENV_VAR, raising=False)
    (home / "secret.key").write_text("")
    with pytest.raises(secrets.SecretKeyError) as raised:
        secrets.keyring(env_settings()).encrypt(TOKEN_A)
    assert "secret.key is empty" in str(raised.value) and "GHMETRICS_SECRET_KEY is not" not in str(raised.value)


def test_each_ciphertext_carries_its_key_id_and_a_wrong_key_is_named(home, monkeypatch):
    monkeypatch.delenv(secrets.ENV_VAR, raising=False)
    ciphertext = secrets.keyring(env_settings()).encrypt(TOKEN_A)
    kid = secrets.key_id(secrets.keyring(env_settings()).load_keys()[0])
    assert ciphertext.startswith(f"kid:{kid}:") and TOKEN_A not in ciphertext
    monkeypatch.setenv(secrets.ENV_VAR, Fernet.generate_key().decode())
    with pytest.raises(secrets.SecretKeyError, match=f"key {kid}, which is not in GHMETRICS_SECRET_KEY"):
        secrets.keyring(env_settings()).decrypt(ciphertext)


def test_secrets_rotate_reencrypts_every_token_under_a_new_key(database_url, home, monkeypatch):
    monkeypatch.delenv(secrets.ENV_VAR, raising=False)
    # A token stored before key ids existed (plain Fernet) is rotated too.
    invoke("users", "add", "alice", "--token-stdin", input=TOKEN_A + "\n")
    old_key = (home / "secret.key").read_bytes().strip()
    legacy = Fernet(old_key).encrypt(TOKEN_B.encode()).decode()
    with warehouse.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("insert into app.users (login, token_ciphertext) values ('bob', %s)", (legacy,))
    before = stored(database_url)

    result = invoke("secrets", "rotate")
    assert result.exit_code == 0, result.output
    new_kid = secrets.key_id(secrets.keyring(env_settings()).load_keys()[0])
    assert f"2 stored token(s) re-encrypted under key {new_kid}" in result.output
    after = stored(database_url)
    assert all(c.startswith(f"kid:{new_kid}:") for c in after.values()) and after != before
    assert {secrets.keyring(env_settings()).decrypt(after["alice"]), secrets.keyring(env_settings()).decrypt(after["bob"])} == {TOKEN_A, TOKEN_B}
    # The old key is gone from the file, which stays private.
    key_file = home / "secret.key"
    assert key_file.read_bytes().strip() != old_key and len(secrets.keyring(env_settings()).load_keys()) == 1
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with pytest.raises(secrets.SecretKeyError):
        secrets.keyring(env_settings()).decrypt(before["alice"])


def test_secrets_rotate_with_keys_in_the_environment(database_url, home, monkeypatch):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(secrets.ENV_VAR, old)
    invoke("users", "add", "alice", "--token-stdin", input=TOKEN_A + "\n")
    monkeypatch.setenv(secrets.ENV_VAR, f"{new},{old}")
    result = invoke("secrets", "rotate")
    assert result.exit_code == 0 and "remove every key but the first" in result.output
    monkeypatch.setenv(secrets.ENV_VAR, new)
    assert secrets.keyring(env_settings()).decrypt(stored(database_url)["alice"]) == TOKEN_A

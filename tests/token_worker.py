"""A second process for tests/test_tokens.py: wait for the go file, then ask the token store
for an access token (refreshing it: the stored one is expired) and print it."""

from __future__ import annotations

import sys

from core import logging as hblog
from core.config import load_config
from core.db import open_database
from core.factory import open_token_store
from tests.together import ready_then_wait


def main(config_path: str, name: str, go_file: str) -> None:
    loaded = load_config(config_path)
    hblog.configure(loaded.secrets, json=True)  # logs to stderr; stdout is for the token
    store = open_token_store(loaded, open_database(loaded.database_url))
    tokens = store.tokens(name, loaded.config.connections[name], loaded.path)
    ready_then_wait(go_file)
    sys.stdout.write(tokens.access_token() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(*sys.argv[1:4])

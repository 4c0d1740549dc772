"""Make the secrets deploy/compose.yaml and deploy/k8s/ read: NATS operator-mode keys and the rest.

    .venv/bin/python deploy/make_secrets.py deploy/secrets     (compose.yaml expects that folder)

Writes, into a folder made mode 0700 (nothing is overwritten: delete the folder to start over):

- ``nats-auth.conf``: the operator, the system account and Quipu's account (JetStream enabled,
  with a signing key), for every NATS node's configuration (``include ./auth.conf``);
- ``nats-signing.nk``: the account's signing key seed; Quipu mints each role's NATS user, and
  workers' credentials, with it (``QUIPU_NATS_SIGNING_KEY_FILE``);
- ``operator.creds``: a NATS user allowed everything, for ``nats --creds`` and ``quipu events tail``;
- ``quipu.env``: ``QUIPU_NATS_ACCOUNT``, ``QUIPU_SECRET_KEY``, the Postgres password and URL.

The files a container reads are 0644 inside the 0700 folder: the containers run as uid 10001,
not as the account that ran this, and the folder keeps other local users out. For Kubernetes,
``kubectl create secret`` reads the same files (see deploy/k8s/README.md).
This is a starting point for one deployment; an operator with ``nsc`` keeps the keys there instead.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

from bus.nats_auth import EVERYTHING, OperatorKeys


def files(keys: OperatorKeys, postgres_password: str, secret_key: str) -> dict[str, tuple[str, int]]:
    """name -> (content, mode) of everything :func:`main` writes."""
    authority = keys.authority
    env = (
        f"QUIPU_NATS_ACCOUNT={authority.account}\n"
        f"QUIPU_SECRET_KEY={secret_key}\n"
        f"POSTGRES_PASSWORD={postgres_password}\n"
        f"QUIPU_DATABASE_URL=postgresql://quipu:{postgres_password}@postgres:5432/quipu\n"
    )
    return {
        "nats-auth.conf": (keys.server_config(), 0o644),
        "nats-signing.nk": (keys.signing_seed + "\n", 0o644),
        "operator.creds": (authority.mint("quipu-operator", EVERYTHING), 0o600),
        "quipu.env": (env, 0o600),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="where to write them (made 0700; must not exist yet)")
    folder = parser.parse_args(argv).folder
    if folder.exists() and any(folder.iterdir()):
        print(f"{folder} is not empty: keeping the secrets it holds", file=sys.stderr)
        return 1
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    made = files(OperatorKeys.generate(), secrets.token_urlsafe(24), secrets.token_hex(32))
    for name, (content, mode) in made.items():
        path = folder / name
        path.touch(mode=0o600)  # never readable by others while being written
        path.write_text(content)
        path.chmod(mode)
    print(f"wrote {', '.join(made)} to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

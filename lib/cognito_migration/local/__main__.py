"""The local AWS as a standalone server.

    python -m cognito_migration.local serve --port 5000 [--users 2000] [--seed 7] [--virtual-users 10000000]
    python -m cognito_migration.local replay --endpoint http://127.0.0.1:5000 --new-pool-name users-v2 --share 0.3

``serve`` prints its endpoint and this run's random credentials, and serves until stopped (Ctrl-C): it
refuses every other access key (another local user cannot drive it). With it running, export what it
printed (``AWS_ENDPOINT_URL`` and the credentials) and run the notebooks, by hand or with papermill.
``--virtual-users N`` adds a read-only virtual pool of N users generated on the fly (docs/virtual-pool.md) and
prints its id.
``replay`` signs a share of the legacy users in to the new
pool (their passwords are derived again from the same seed, never stored).
"""

from __future__ import annotations

import argparse
import os
import threading

from .demo import LocalEnvironment, replay_into
from .legacy import (
    DEFAULT_ACCOUNT_ID,
    LEGACY_MIGRATION_CLIENT_ID,
    LEGACY_WEB_CLIENT_ID,
    LegacyPool,
    generate_users,
    legacy_pool_id,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cognito_migration.local", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the local AWS with a seeded legacy pool")
    serve.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (0: any free port)")
    serve.add_argument("--users", type=int, default=2000, help="legacy users to seed (0: no legacy pool)")
    serve.add_argument("--seed", type=int, default=7, help="seed of the generated users and their passwords")
    serve.add_argument("--region", default="us-east-1")
    serve.add_argument(
        "--virtual-users", type=int, default=0, help="users of a read-only virtual pool, generated on the fly (0: none)"
    )
    replay = commands.add_parser("replay", help="sign a share of legacy users in to the new pool")
    replay.add_argument("--endpoint", required=True, help="the endpoint `serve` printed")
    replay.add_argument("--new-pool-name", default="users-v2")
    replay.add_argument("--share", type=float, default=0.3)
    replay.add_argument("--users", type=int, default=2000, help="as given to serve")
    replay.add_argument("--seed", type=int, default=7, help="as given to serve")
    replay.add_argument("--region", default="us-east-1")
    args = parser.parse_args(argv)

    if args.command == "serve":
        with LocalEnvironment(users=args.users, seed=args.seed, region=args.region, port=args.port) as local:
            print(f"local AWS listening on {local.aws.endpoint_url}", flush=True)
            print(
                f"legacy pool {local.legacy.pool_id}: {len(local.legacy.users)} users; "
                f"trigger client {local.legacy.migration_client_id}",
                flush=True,
            )
            if args.virtual_users:
                pool_id = local.aws.add_virtual_pool(args.virtual_users, seed=args.seed, region=args.region)
                print(f"virtual pool {pool_id}: {args.virtual_users} users (seed {args.seed}), read-only", flush=True)
            print(
                f"export AWS_ENDPOINT_URL={local.aws.endpoint_url} AWS_DEFAULT_REGION={args.region} "
                + " ".join(f"{k}={v}" for k, v in local.aws.credentials.items()),
                flush=True,
            )
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                print("stopped", flush=True)
        return 0

    if not os.environ.get("AWS_ACCESS_KEY_ID"):
        parser.error("replay: export the variables `serve` printed first (its credentials are this run's own)")
    # The records are generated again from the seed: the same users, the same derived passwords.
    legacy = LegacyPool(
        legacy_pool_id(args.region),
        args.region,
        DEFAULT_ACCOUNT_ID,
        LEGACY_MIGRATION_CLIENT_ID,
        LEGACY_WEB_CLIENT_ID,
        args.seed,
        generate_users(args.users, args.seed),
    )
    result = replay_into(legacy, args.endpoint, args.new_pool_name, args.share)
    print(", ".join(f"{k}: {v}" for k, v in sorted(result.counts.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

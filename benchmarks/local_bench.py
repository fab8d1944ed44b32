"""The local AWS's own cost per call, by pool size: does a large pool answer as fast as a small one?

    .venv/bin/python benchmarks/local_bench.py [--sizes 2000,20000,100000] [--pages 200]

Over HTTP, without quotas or added latency, on the seeded legacy pool: the mean time of the first `--pages`
ListUsers pages (token by token, as a reader walks them) and of a sharded page (`sub ^= "a"`), then in a
case-insensitive pool holding the same users: an AdminGetUser that misses and an AdminCreateUser (both look
the name up ignoring case). Each size in its own process. ``--freeze``: gc.freeze() after seeding, as the
demo's LocalEnvironment does, so the garbage collector stops walking the seeded users.
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

import sizes


def _mean_ms(call: Any, times: int) -> float:
    started = time.perf_counter()
    for i in range(times):
        call(i)
    return round(1000 * (time.perf_counter() - started) / times, 1)


def measure(users: int, pages: int, freeze: bool = False) -> dict[str, Any]:
    import boto3
    from botocore.exceptions import ClientError
    from moto.cognitoidp.models import cognitoidp_backends

    from cognito_migration.local.legacy import seed_legacy_pool
    from cognito_migration.local.server import LocalAWS

    with LocalAWS() as local:
        os.environ.update(local.credentials)
        legacy = seed_legacy_pool(users=users, seed=1)
        if freeze:  # as LocalEnvironment does after seeding
            gc.freeze()
        cognito = boto3.client("cognito-idp", region_name=legacy.region, endpoint_url=local.endpoint_url)
        token: list[str | None] = [None]

        def page(_: int) -> None:
            extra = {"PaginationToken": token[0]} if token[0] else {}
            token[0] = cognito.list_users(UserPoolId=legacy.pool_id, Limit=60, **extra).get("PaginationToken")

        page_ms = _mean_ms(page, min(pages, users // 60))
        shard_ms = _mean_ms(lambda _: cognito.list_users(UserPoolId=legacy.pool_id, Filter='sub ^= "a"'), 5)

        pool_id = cognito.create_user_pool(PoolName="case-insensitive", UsernameConfiguration={"CaseSensitive": False})[
            "UserPool"
        ]["Id"]
        backend = cognitoidp_backends[legacy.account_id][legacy.region]
        backend.user_pools[pool_id].users.update(backend.user_pools[legacy.pool_id].users)

        def miss(i: int) -> None:
            try:
                cognito.admin_get_user(UserPoolId=pool_id, Username=f"Nobody{i}")
            except ClientError:
                pass

        miss_ms = _mean_ms(miss, 50)
        create_ms = _mean_ms(
            lambda i: cognito.admin_create_user(UserPoolId=pool_id, Username=f"Newcomer{i}", MessageAction="SUPPRESS"),
            50,
        )
    return {"users": users, "page_ms": page_ms, "shard_page_ms": shard_ms, "miss_ms": miss_ms, "create_ms": create_ms}


def main(argv: list[str] | None = None) -> int:
    parser = sizes.parser(__doc__, "2000,20000,100000")
    parser.add_argument("--pages", type=int, default=200, help="ListUsers pages walked per size")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() after seeding, as the demo does")
    args = parser.parse_args(argv)
    extra = ["--pages", str(args.pages), *(["--freeze"] if args.freeze else [])]
    rows = sizes.by_size(args, __file__, lambda users: measure(users, args.pages, args.freeze), *extra)
    if rows is None:
        return 0
    print("| users | ListUsers page | sharded page | case-insensitive miss | AdminCreateUser |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [f"{r['users']:,}"] + [f"{r[k]} ms" for k in ("page_ms", "shard_page_ms", "miss_ms", "create_ms")]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

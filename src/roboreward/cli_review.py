"""`roboreward review` (the review app) and `roboreward review export` (the verified dataset)."""

from __future__ import annotations

import argparse
import json
from typing import Any

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _review(args: argparse.Namespace) -> int:
    if args.action == "export":
        return _export(args)
    from roboreward.review import build_review_app

    if not args.dataset or not args.db:
        raise ValueError("roboreward review needs --dataset and --db")
    auth = None
    if args.auth:
        user, sep, password = args.auth.partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth must be USER:PASSWORD")
        auth = (user, password)
    if args.host not in LOOPBACK and auth is None and not args.insecure:
        raise ValueError(f"--host {args.host} opens the review app to the network: add --auth USER:PASSWORD")
    app = build_review_app(args.dataset, args.split, args.db, args.annotator, args.double_fraction)
    app.queue(default_concurrency_limit=1).launch(server_name=args.host, server_port=args.port, auth=auth)
    return 0


def _export(args: argparse.Namespace) -> int:
    from roboreward.review import export_verified

    if not (args.db and args.dataset and args.out):
        raise ValueError("roboreward review export needs --db, --dataset and --out")
    report = export_verified(args.db, args.dataset, args.out, args.split, args.min_annotators, args.policy)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    print(
        f"{report['verified_rows']} verified rows of {report['examples']} -> {args.out}: {report['outcomes']}"
    )
    for pair, stats in report["agreement"]["pairs"].items():
        exact, kappa = stats["exact_agreement"], stats["quadratic_kappa"]
        print(f"  {pair}: {stats['examples']} shared, exact agreement {exact}, quadratic kappa {kappa}")
    for key, groups in report["agreement"]["changed"].items():
        for group, stats in groups.items():
            print(
                f"  changed by {key} {group}: {stats['changed_rate']:.2f} of {stats['decisions']} decisions"
            )
    return 0


def add_review_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "review",
        help="human verification of a split: the review app, or `review export` for the verified dataset",
        description="Without an action: serve the review app (keys 1-5 correct, a accept, r reject, s skip; "
        "every decision is saved to --db at once). `roboreward review export`: write the verified dataset "
        "and print agreement statistics.",
    )
    parser.add_argument("action", nargs="?", choices=["export"], help="export: write the verified dataset")
    parser.add_argument("--dataset", help="a folder written by `roboreward build`")
    parser.add_argument("--split", default="test")
    parser.add_argument("--db", help="the SQLite file of decisions (created if missing)")
    parser.add_argument("--annotator", default="annotator", help="your name (letters, digits, . _ -)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7861)
    parser.add_argument("--auth", metavar="USER:PASSWORD", help="basic auth, required off loopback")
    parser.add_argument("--insecure", action="store_true", help="allow a non-loopback host without --auth")
    parser.add_argument("--double-fraction", type=float, default=0.1, help="share of examples labelled twice")
    parser.add_argument("--out", help="export: the verified dataset folder")
    parser.add_argument("--min-annotators", type=int, default=1, help="export: decisions needed per example")
    parser.add_argument("--policy", choices=["majority", "unanimous"], default="majority")
    parser.add_argument("--json", action="store_true", help="export: print the verification report")
    parser.set_defaults(func=_review)

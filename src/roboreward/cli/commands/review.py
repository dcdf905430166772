"""`roboreward review` (the review app) and `roboreward review export` (the verified dataset).

    roboreward review --dataset roboreward --db reviews.sqlite --annotator alice
    roboreward review --dataset roboreward --db reviews.sqlite --host 0.0.0.0 --auth alice:PW --auth bob:PW
    roboreward review export --db reviews.sqlite --dataset roboreward --out roboreward_verified --json

`export` is a sub-command of `review` (its own options and ``--help``); without it, `review` serves
the app. Off loopback the app needs ``--auth`` (or ``--insecure``); with ``--auth`` and no
``--annotator`` each login name is the annotator's name.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from roboreward.cli.access import is_loopback


def parse_auth(entries: list[str] | None) -> list[tuple[str, str]]:
    """``USER:PASSWORD`` entries as (user, password) pairs; the user must be a valid annotator name."""
    from roboreward.review import sanitize_annotator

    pairs = []
    for entry in entries or []:
        user, sep, password = entry.partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth must be USER:PASSWORD (the user being an annotator name)")
        pairs.append((sanitize_annotator(user), password))
    return pairs


def check_access(host: str, auth: list[tuple[str, str]], insecure: bool) -> None:
    """Refuse to open the app to the network without a login (unless asked to with ``insecure``)."""
    if not is_loopback(host) and not auth and not insecure:
        raise ValueError(
            f"--host {host} opens the review app to the network: add --auth USER:PASSWORD "
            "(or --insecure if the network is trusted)"
        )


def run(args: argparse.Namespace) -> int:
    from roboreward.review import build_review_app, sanitize_annotator

    if not args.dataset or not args.db:
        raise ValueError("roboreward review needs --dataset DIR and --db FILE (or the `export` sub-command)")
    auth = parse_auth(args.auth)
    check_access(args.host, auth, args.insecure)
    annotator = sanitize_annotator(args.annotator) if args.annotator is not None else None
    app = build_review_app(args.dataset, args.split, args.db, annotator, args.double_fraction)
    who = annotator or ("each login name" if auth else "the name typed into the page")
    print(f"reviewing the {args.split} split of {args.dataset} as {who}; decisions go to {args.db}")
    app.queue().launch(
        server_name=args.host,
        server_port=args.port,
        auth=auth or None,
        auth_message="RoboRewardBench review: log in with your annotator name" if auth else None,
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from roboreward.review import export_verified

    report = export_verified(args.db, args.dataset, args.out, args.split, args.min_annotators, args.policy)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    print(format_report(report, args.out))
    return 0


def format_report(report: dict[str, Any], out: str) -> str:
    """The verification report as the short text `roboreward review export` prints."""

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    outcomes = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report["outcomes"].items())
    lines = [
        f"{report['verified_rows']} verified rows of {report['examples']} in the {report['split']} split "
        f"-> {out} ({report['decisions']} decisions by {len(report['annotators'])} annotators, "
        f"policy {report['policy']})",
        f"  {outcomes}",
        "agreement per annotator pair (exact on shared examples; quadratic kappa on examples both scored):",
    ]
    pairs = {**report["agreement"]["pairs"], "all pairs": report["agreement"]["overall"]}
    for name, v in pairs.items():
        lines.append(
            f"  {name.replace('|', ' / '):24s} {v['examples']:5d} shared  exact {fmt(v['exact_agreement'])}"
            f"  kappa {fmt(v['quadratic_kappa'])} ({v['scored']} scored)"
        )
    for key in ("source", "augmentation"):
        lines.append(f"proposed labels changed, by {key} (share of decisions):")
        for name, v in report["agreement"][f"by_{key}"].items():
            lines.append(
                f"  {name:24s} {v['decisions']:5d} decisions  changed {fmt(v['changed'])}"
                f"  (corrected {fmt(v['corrected'])}, rejected {fmt(v['rejected'])})"
                f"  exact agreement {fmt(v['pairs_exact_agreement'])}"
            )
    return "\n".join(lines)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add `review` (and its `export` sub-command) to the `roboreward` sub-commands."""
    review = commands.add_parser(
        "review",
        help="human verification of a split: the review app, or `review export` for the verified dataset",
        description="Serve the review app: one example at a time (video, task, proposed reward and its "
        "rubric line, provenance); keys 1-5 correct the score, a accepts, r rejects (with the reason "
        "chosen), s skips. Every decision is committed to --db at once. `roboreward review export "
        "--help`: write the verified dataset and print agreement statistics.",
    )
    review.add_argument("--dataset", metavar="DIR", help="a folder written by `roboreward build`")
    review.add_argument("--split", default="test", help="the split to review (default test)")
    review.add_argument("--db", metavar="FILE", help="the SQLite file of decisions (created if missing)")
    review.add_argument(
        "--annotator",
        metavar="NAME",
        help="your name (letters, digits, . _ -; at most 64); default: the login name, else asked",
    )
    review.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    review.add_argument("--port", type=int, default=7861, help="port (default 7861)")
    review.add_argument(
        "--auth",
        action="append",
        metavar="USER:PASSWORD",
        help="basic-auth login (repeatable, one per annotator); required off loopback",
    )
    review.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without --auth")
    review.add_argument(
        "--double-fraction",
        type=float,
        default=0.1,
        metavar="F",
        help="share of examples (by a hash of their id) labelled by two annotators (default 0.1)",
    )
    review.set_defaults(func=run)

    actions = review.add_subparsers(dest="action", metavar="{export}")
    export = actions.add_parser(
        "export",
        help="write the verified dataset and print agreement statistics",
        description="Write DIR_VERIFIED: the verified split (corrections applied, rejected and "
        "not-enough-reviewed examples left out, `verified` and `reviewers` columns), the other splits "
        "as they are (verified=false), the card with a 'Human verification' section and "
        "verification_report.json (per-pair quadratic kappa, exact agreement, changes per source and "
        "augmentation). Majority: the most common decision; a tie with a rejection drops the example, "
        "a tie between scores takes the lower median. Unanimous: any disagreement drops the example.",
    )
    export.add_argument("--db", required=True, metavar="FILE", help="the SQLite file of decisions")
    export.add_argument("--dataset", required=True, metavar="DIR", help="the folder that was reviewed")
    export.add_argument("--out", required=True, metavar="DIR_VERIFIED", help="a new folder to write")
    export.add_argument("--split", default="test", help="the reviewed split (default test)")
    export.add_argument(
        "--min-annotators", type=int, default=1, metavar="N", help="decisions an example needs (default 1)"
    )
    export.add_argument("--policy", choices=["majority", "unanimous"], default="majority")
    export.add_argument("--json", action="store_true", help="print the verification report as JSON")
    export.set_defaults(func=run_export)
    return review

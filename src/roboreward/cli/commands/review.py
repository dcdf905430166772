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
from dataclasses import dataclass, field
from typing import Any, Literal

from roboreward.cli.access import is_loopback
from roboreward.cli.commands import COMMANDS
from roboreward.config import check_fields, check_range, from_namespace
from roboreward.review import build_review_app, export_verified, sanitize_annotator


def parse_auth(entries: list[str] | None) -> list[tuple[str, str]]:
    """``USER:PASSWORD`` entries as (user, password) pairs; the user must be a valid annotator name.

    Args:
        entries: the ``--auth`` values.
    """
    pairs = []
    for entry in entries or []:
        user, sep, password = entry.partition(":")
        if not sep or not user or not password:
            raise ValueError("--auth must be USER:PASSWORD (the user being an annotator name)")
        pairs.append((sanitize_annotator(user), password))
    return pairs


def check_access(host: str, auth: list[tuple[str, str]], insecure: bool) -> None:
    """Refuse to open the app to the network without a login (unless asked to with ``insecure``).

    Args:
        host: the ``--host`` value.
        auth: the logins (`parse_auth`).
        insecure: the ``--insecure`` flag.
    """
    if not is_loopback(host) and not auth and not insecure:
        raise ValueError(
            f"--host {host} opens the review app to the network: add --auth USER:PASSWORD "
            "(or --insecure if the network is trusted)"
        )


@dataclass
class ReviewConfig:
    """The review app's settings."""

    dataset: str | None = field(
        default=None, metadata={"help": "a folder written by `roboreward build` (required)", "metavar": "DIR"}
    )
    split: str = field(default="test", metadata={"help": "the split to review"})
    db: str | None = field(
        default=None,
        metadata={"help": "the SQLite file of decisions, created if missing (required)", "metavar": "FILE"},
    )
    annotator: str | None = field(
        default=None,
        metadata={
            "help": "your name (letters, digits, . _ -; at most 64); None: the login name, else asked",
            "metavar": "NAME",
        },
    )
    host: str = field(default="127.0.0.1", metadata={"help": "address to bind (not loopback: needs --auth)"})
    port: int = field(default=7861, metadata={"help": "port"})
    auth: list[str] = field(
        default_factory=list,
        metadata={
            "help": "basic-auth login (repeatable, one per annotator); required off loopback",
            "repeat": True,
            "metavar": "USER:PASSWORD",
        },
    )
    insecure: bool = field(default=False, metadata={"help": "allow a non-loopback --host without --auth"})
    double_fraction: float = field(
        default=0.1,
        metadata={
            "help": "share of examples (by a hash of their id) labelled by two annotators, 0..1",
            "metavar": "F",
        },
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.dataset or not self.db:
            raise ValueError(
                "roboreward review needs --dataset DIR and --db FILE (or the `export` sub-command)"
            )
        if not self.split.strip():
            raise ValueError("split is empty")
        check_range(self, "port", 1, 65535)
        check_range(self, "double_fraction", 0, 1)
        if self.annotator is not None:
            self.annotator = sanitize_annotator(self.annotator)
        check_access(self.host, self.logins, self.insecure)  # parses --auth too

    @property
    def logins(self) -> list[tuple[str, str]]:
        """The ``--auth`` logins as (user, password) pairs (`parse_auth`)."""
        return parse_auth(self.auth)


@dataclass
class ReviewExportConfig:
    """What `roboreward review export` writes."""

    db: str = field(metadata={"help": "the SQLite file of decisions", "metavar": "FILE"})
    dataset: str = field(metadata={"help": "the folder that was reviewed", "metavar": "DIR"})
    out: str = field(metadata={"help": "a new folder to write", "metavar": "DIR_VERIFIED"})
    split: str = field(default="test", metadata={"help": "the reviewed split"})
    min_annotators: int = field(default=1, metadata={"help": "decisions an example needs", "metavar": "N"})
    policy: Literal["majority", "unanimous"] = field(
        default="majority", metadata={"help": "how the decisions on an example combine"}
    )

    def __post_init__(self) -> None:
        check_fields(self)  # policy among its two names, also from a recipe
        for name in ("db", "dataset", "out", "split"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} is empty")
        check_range(self, "min_annotators", low=1)


def run(args: argparse.Namespace) -> int:
    """Serve the review app on the split until stopped.

    Args:
        args: the parsed command line.
    """
    config = from_namespace(ReviewConfig, args)  # checked: both paths, the logins, the access, the name
    auth, annotator = config.logins, config.annotator
    app = build_review_app(config.dataset, config.split, config.db, annotator, config.double_fraction)
    who = annotator or ("each login name" if auth else "the name typed into the page")
    print(f"reviewing the {config.split} split of {config.dataset} as {who}; decisions go to {config.db}")
    app.queue().launch(
        server_name=config.host,
        server_port=config.port,
        auth=auth or None,
        auth_message="RoboRewardBench review: log in with your annotator name" if auth else None,
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the verified dataset and print the agreement statistics.

    Args:
        args: the parsed command line.
    """
    config = from_namespace(ReviewExportConfig, args)
    report = export_verified(
        config.db, config.dataset, config.out, config.split, config.min_annotators, config.policy
    )
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return 0
    print(format_report(report, config.out))
    return 0


def format_report(report: dict[str, Any], out: str) -> str:
    """The verification report as the short text `roboreward review export` prints.

    Args:
        report: what `roboreward.review.export_verified` returns.
        out: the folder it wrote.
    """

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
    """Add `review` (and its `export` sub-command) to the `roboreward` sub-commands.

    Args:
        commands: the sub-command registry of the ``roboreward`` parser (``parser_class=RecipeParser``).
    """
    review = commands.add_parser(
        "review",
        dataclass_types=ReviewConfig,
        recipe="review",
        help=COMMANDS["review"],
        description="Serve the review app: one example at a time (video, task, proposed reward and its "
        "rubric line, provenance); keys 1-5 correct the score, a accepts, r rejects (with the reason "
        "chosen), s skips. Every decision is committed to --db at once. `roboreward review export "
        "--help`: write the verified dataset and print agreement statistics.",
    )
    review.set_defaults(func=run)

    actions = review.add_subparsers(dest="action", metavar="{export}")
    export = actions.add_parser(
        "export",
        dataclass_types=ReviewExportConfig,
        recipe="review export",
        help="write the verified dataset and print agreement statistics",
        description="Write DIR_VERIFIED: the verified split (corrections applied, rejected and "
        "not-enough-reviewed examples left out, `verified` and `reviewers` columns), the other splits "
        "as they are (verified=false), the card with a 'Human verification' section and "
        "verification_report.json (per-pair quadratic kappa, exact agreement, changes per source and "
        "augmentation). Majority: the most common decision; a tie with a rejection drops the example, "
        "a tie between scores takes the lower median. Unanimous: any disagreement drops the example.",
    )
    export.add_argument("--json", action="store_true", help="print the verification report as JSON")
    export.set_defaults(func=run_export)
    return review

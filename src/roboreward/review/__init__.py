"""Human verification of RoboRewardBench: a review app, durable decisions, agreement statistics.

    roboreward review --dataset roboreward --split test --db reviews.sqlite --annotator alice
    roboreward review export --db reviews.sqlite --dataset roboreward --out roboreward_verified

    >>> from roboreward.review import build_review_app, export_verified
    >>> build_review_app("roboreward", "test", "reviews.sqlite", "alice").launch()  # doctest: +SKIP
    >>> export_verified("reviews.sqlite", "roboreward", "roboreward_verified")  # doctest: +SKIP

The modules, one job each:

- `store`: the decisions, durable in SQLite (`ReviewStore`), and annotator names.
- `assignment`: which example an annotator sees next (double-labelled examples by a hash of the id).
- `split`: the split under review, read through `roboreward.dataset.folder` (the owner of a built
  folder's layout, which `export` also writes through).
- `session`: `SplitReview`, a split under review (examples, decisions, assignment, videos on demand).
- `app`: the Gradio app over a `SplitReview`.
- `agreement`: pairwise quadratic kappa and exact agreement, changes per source and augmentation,
  the verified label of an example (`final_label`).
- `export`: the verified dataset folder, its report and its card section (`export_verified`).
"""

from roboreward.review.agreement import POLICIES, agreement, decision_outcome, final_label, quadratic_kappa
from roboreward.review.app import build_review_app
from roboreward.review.assignment import assignment_order, is_double_labelled, labels_needed, next_example
from roboreward.review.export import export_verified
from roboreward.review.session import SplitReview
from roboreward.review.store import DECISIONS, REJECT_REASONS, ReviewStore, sanitize_annotator

__all__ = [
    "DECISIONS",
    "POLICIES",
    "REJECT_REASONS",
    "ReviewStore",
    "SplitReview",
    "agreement",
    "assignment_order",
    "build_review_app",
    "decision_outcome",
    "export_verified",
    "final_label",
    "is_double_labelled",
    "labels_needed",
    "next_example",
    "quadratic_kappa",
    "sanitize_annotator",
]

"""The Gradio review app over a `SplitReview`.

The app shows one example at a time: the video, the task, the proposed reward with its rubric
line, and how the row was made (source, augmentation, original task, relabel level and failure mode,
clip fraction, the source's raw progress score). The annotator accepts the label, corrects the score
(``1``-``5``), rejects the example with a reason (`REJECT_REASONS`), or skips it for later. Keys:
``1``-``5`` correct, ``a`` accept, ``r`` reject (with the reason chosen in the radio; there is no
default reason), ``s`` skip; keys typed into a text field are ignored. Pressing the proposed score
counts as accepting it. The annotator is, in this order: the ``annotator`` argument, the login name
(basic auth), or the name typed into the page.
"""

# No `from __future__ import annotations`: Gradio reads the handlers' `gr.Request` annotation at run
# time.
import os
import re
from typing import Any

from roboreward import rubric
from roboreward.extras import refusing_blocks, require
from roboreward.review.session import SplitReview
from roboreward.review.store import REJECT_REASONS, sanitize_annotator

__all__ = ["build_review_app"]

_KEYS_JS = """
() => {
  if (window.__roborewardReviewKeys) return;
  window.__roborewardReviewKeys = true;
  const buttons = {"1": "review-1", "2": "review-2", "3": "review-3", "4": "review-4", "5": "review-5",
                   "a": "review-accept", "r": "review-reject", "s": "review-skip"};
  const clickable = ["radio", "checkbox", "button", "submit", "reset", "range", "color", "file"];
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat || event.isComposing) return;
    const target = event.target;
    const tag = (target && target.tagName || "").toUpperCase();
    const typing = (target && target.isContentEditable) || tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && !clickable.includes((target.type || "text").toLowerCase()));
    if (typing) return;
    const id = buttons[(event.key || "").toLowerCase()];
    const element = id && document.getElementById(id);
    const button = element && (element.tagName === "BUTTON" ? element : element.querySelector("button"));
    if (button && !button.disabled) { event.preventDefault(); button.click(); }
  });
}
"""


def _markdown_text(text: Any) -> str:
    """Dataset text shown as Markdown literally (no emphasis, links or HTML from a task string)."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~])", r"\\\1", str(text))


def build_review_app(
    dataset_dir: str | os.PathLike[str],
    split: str = "test",
    db_path: str | os.PathLike[str] = "reviews.sqlite",
    annotator: str | None = None,
    double_fraction: float = 0.1,
) -> Any:
    """The Gradio review app (a `gr.Blocks`; see the module docstring). Launch it yourself:
    ``build_review_app("roboreward", "test", "reviews.sqlite").launch()`` (127.0.0.1 by default).

    API endpoints (``gradio_client``): ``/current`` (the example to review), ``/accept``,
    ``/correct_1`` .. ``/correct_5``, ``/reject`` and ``/skip``, each taking the example id shown and the
    reject reason, and ``/start`` (the annotator's name, when neither ``annotator`` nor a login gives it).

    Args:
        dataset_dir: a folder written by `roboreward build`.
        split: the split to review.
        db_path: the SQLite file of decisions (created if missing).
        annotator: the annotator's name (None: the login name, else the name typed into the page).
        double_fraction: the share of examples labelled by two annotators.
    """
    gr = require("gradio", "space")
    fixed = sanitize_annotator(annotator) if annotator is not None else None
    review = SplitReview(dataset_dir, split, db_path, double_fraction)

    def who(name: str | None, request: gr.Request | None) -> tuple[str | None, bool]:
        """(the annotator, whether the page asks for the name): argument, login, else the page."""
        if fixed is not None:
            return fixed, False
        user = getattr(request, "username", None)
        return (sanitize_annotator(user), False) if user else (name, True)

    def progress_text(name: str | None) -> str:
        if name is None:
            return "Enter your name to start."
        p = review.progress(name)
        sources = ", ".join(f"{_markdown_text(s)} {d}/{t}" for s, (d, t) in p["by_source"].items())
        return f"**{name}**: {p['mine']} decided · {p['done']} / {p['total']} done ({sources})"

    def view(name: str | None, skipped: list[str], ask: bool) -> tuple[Any, ...]:
        """(name, skipped, example id, video, task, proposed, details, progress, reason, name box, start)."""
        head = (name, skipped)
        tail = (gr.Textbox(visible=ask, value=name or ""), gr.Button(visible=ask))
        current = None if name is None else review.next_example(name, skipped)
        if current is None:
            message = (
                "Enter your name to start." if name is None else "Nothing left to review for you. Thank you!"
            )
            return (*head, "", None, f"### {message}", "", "", progress_text(name), None, *tail)
        info = review.describe(current)
        facts = "\n".join(f"- {k}: {_markdown_text(v)}" for k, v in info["facts"])
        return (
            *head,
            current,
            str(review.video_path(current)),
            f"### {_markdown_text(info['task'])}",
            f"**Proposed reward {info['proposed']}**: {_markdown_text(info['rubric_line'])}",
            facts,
            progress_text(name),
            None,
            *tail,
        )

    def refuse(message: str) -> tuple[Any, ...]:
        # A warning toast, the page left as it is: a raised gr.Error would cover the outputs (the
        # reason radio among them) with an error overlay until the next event.
        gr.Warning(message)
        return tuple(gr.skip() for _ in outputs)

    def load(name: str | None, skipped: list[str], request: gr.Request):
        name, ask = who(name, request)
        return view(name, skipped, ask)

    def start(typed: str, name: str | None, skipped: list[str], request: gr.Request):
        current, ask = who(name, request)
        if not ask:  # the name comes from the command line or the login
            return view(current, skipped, ask)
        try:
            typed = sanitize_annotator(typed)
        except ValueError as exc:
            return refuse(str(exc))
        return view(typed, skipped if typed == current else [], ask)

    def act(decision: str, score: int | None):
        def handler(
            current: str, reason: str | None, name: str | None, skipped: list[str], request: gr.Request
        ):
            name, ask = who(name, request)
            if name is None:
                return refuse("Enter your name first.")
            if current:
                if decision == "skip":
                    skipped = [*(s for s in skipped if s != current), current]
                else:
                    if decision == "reject" and reason not in REJECT_REASONS:
                        return refuse(f"Choose why to reject it first: {', '.join(REJECT_REASONS)}.")
                    try:
                        review.decide(current, name, decision, score=score, reason=reason)
                    except ValueError as exc:
                        return refuse(str(exc))
                    skipped = [s for s in skipped if s != current]
            return view(name, skipped, ask)

        return handler

    # Refusals of a request's inputs (a reason outside the choices, too few inputs) are answers that
    # say so, not {"error": null} and a traceback in the log.
    blocks = refusing_blocks()
    with blocks(title=f"RoboRewardBench review: {split}", analytics_enabled=False) as app:
        gr.Markdown(
            "# RoboRewardBench review\n"
            "Judge the **final state** of the episode against the task. Keys: **1**-**5** correct the "
            "score, **a** accept, **r** reject (choose the reason first), **s** skip for later."
        )
        name_state = gr.State(fixed)
        skipped_state = gr.State([])
        with gr.Row():
            name_box = gr.Textbox(label="Your name (letters, digits, . _ -)", elem_id="review-name", scale=3)
            start_button = gr.Button("Start / switch", elem_id="review-start", scale=1)
        progress = gr.Markdown(elem_id="review-progress")
        example_id = gr.Textbox(visible=False, elem_id="review-example-id")
        with gr.Row():
            clip = gr.Video(
                label="episode",
                autoplay=True,
                loop=True,
                interactive=False,
                height=360,
                elem_id="review-video",
            )
            with gr.Column():
                task = gr.Markdown(elem_id="review-task")
                proposed = gr.Markdown(elem_id="review-proposed")
                details = gr.Markdown(elem_id="review-details")
                with gr.Accordion("Rubric", open=False):
                    gr.Markdown("\n".join(f"- {_markdown_text(lv.line())}" for lv in rubric.RUBRIC))
        with gr.Row():
            accept = gr.Button("Accept (a)", variant="primary", elem_id="review-accept")
            corrections = [
                gr.Button(f"{lv.score} · {lv.name}", elem_id=f"review-{lv.score}", min_width=100)
                for lv in rubric.RUBRIC
            ]
        with gr.Row():
            reason = gr.Radio(
                list(REJECT_REASONS), label="Reason to reject", value=None, elem_id="review-reason"
            )
            reject = gr.Button("Reject (r)", variant="stop", elem_id="review-reject")
            skip = gr.Button("Skip (s)", elem_id="review-skip")

        shown = [example_id, clip, task, proposed, details, progress, reason, name_box, start_button]
        outputs = [name_state, skipped_state, *shown]
        inputs = [example_id, reason, name_state, skipped_state]
        events = [
            (accept, "accept", None, "accept"),
            (reject, "reject", None, "reject"),
            (skip, "skip", None, "skip"),
        ]
        events += [(b, "correct", s, f"correct_{s}") for s, b in zip(rubric.SCORES, corrections, strict=True)]
        for button, decision, score, api_name in events:
            button.click(act(decision, score), inputs, outputs, api_name=api_name, trigger_mode="once")
        start_button.click(start, [name_box, name_state, skipped_state], outputs, api_name="start")
        name_box.submit(start, [name_box, name_state, skipped_state], outputs, api_name=False)
        app.load(load, [name_state, skipped_state], outputs, api_name="current")
        app.load(None, js=_KEYS_JS)
    return app

"""Our reward server (`roboreward serve`) and its client.

- `roboreward.serving.server`: `create_app`, the FastAPI app batching requests to one reward model;
- its client, `RewardClient`, lives in `roboreward.models.remote` (it is a reward model too, and
  needs only httpx), and is re-exported here.
"""

from roboreward._imports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "create_app": "server",
        "check_settings": "server",
        "ServerStats": "server",
        "MAX_TASK_CHARS": "server",
        "RewardClient": "roboreward.models.remote",
        "RewardServerError": "roboreward.models.remote",
        "TOKEN_ENV": "roboreward.models.remote",
    },
)

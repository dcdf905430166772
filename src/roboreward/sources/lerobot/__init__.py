"""LeRobot datasets (v2.0, v2.1, v3.0): reading, the on-disk layout, and filtered copies.

- `roboreward.sources.lerobot.reader`: `LeRobotSource`, episodes from a folder or Hub id;
- `roboreward.sources.lerobot.layout`: the format (``meta/info.json``, path templates, checked reads),
  shared by the reader, the filter and the simulators' writers;
- `roboreward.sources.lerobot.filter`: `filter_lerobot`, a copy keeping some episodes;
- `roboreward.sources.lerobot.stats`: LeRobot's feature statistics (per episode, and aggregated into
  ``meta/stats.json``), computed as LeRobot computes them.
"""

from roboreward._imports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "SUPPORTED_VERSIONS": "layout",
        "LeRobotSource": "reader",
        "default_video_key": "reader",
        "FILTER_RECORD": "filter",
        "filter_lerobot": "filter",
    },
)

"""Building the RoboReward dataset and owning its folder.

- `roboreward.dataset.builder`: `BuildConfig`, `build` (sources -> splits -> Parquet shards);
- `roboreward.dataset.pipeline`: `build_with_relabel` (the build with relabeling stages);
- `roboreward.dataset.folder`: `DatasetFolder`, the one owner of a built folder's layout;
- `roboreward.dataset.splits`: uniform quotas and grouped, seeded splits;
- `roboreward.dataset.lock`: the lock on an output folder;
- `roboreward.dataset.fingerprint`: content fingerprints, `load_dataset` keyed by the files;
- `roboreward.dataset.cards`: the dataset and model cards.
"""

from roboreward._imports import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "BuildConfig": "builder",
        "build": "builder",
        "DatasetFolder": "folder",
    },
)

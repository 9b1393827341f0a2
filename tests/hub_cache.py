"""Build a hub dataset's local ``datasets`` cache offline, exactly as an earlier online load would have left it.

When ``datasets`` downloads ``namespace/name`` at a commit, it prepares Arrow files under
``<HF_DATASETS_CACHE>/namespace___name/<config>/0.0.0/<commit>/`` with a ``dataset_info.json``; with the hub offline,
``load_dataset("namespace/name")`` reads that folder back. The hub is unreachable here, so this helper prepares the
same folder with ``datasets``' own JSON builder (the builder a hub repo of JSON Lines files uses) and puts it where
the hub id's cache lives.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

COMMIT = "3f1c0ffee0d15ea5e5ba5eba11c0de5eedfacade"


def build_hub_cache(
    cache_dir: Path,
    repo_id: str,
    configs: dict[str, dict[str, list[dict[str, object]]]],
    commit: str = COMMIT,
) -> Path:
    """Cache ``repo_id`` at ``commit``: ``configs`` maps config name -> split -> rows. Returns the dataset's folder."""
    from datasets.packaged_modules.json.json import Json

    namespace, name = repo_id.split("/")
    build_root = cache_dir / "_build"
    for config_name, splits in configs.items():
        sources = cache_dir / "_sources" / config_name
        sources.mkdir(parents=True, exist_ok=True)
        data_files = {}
        for split, rows in splits.items():
            path = sources / f"{split}.jsonl"
            path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
            data_files[split] = str(path)
        builder = Json(
            cache_dir=str(build_root),
            dataset_name=name,
            config_name=config_name,
            config_id=config_name,
            hash=commit,
            data_files=data_files,
        )
        builder.download_and_prepare()
    target = cache_dir / f"{namespace}___{name}"
    shutil.move(str(build_root / name), str(target))
    shutil.rmtree(build_root)
    shutil.rmtree(cache_dir / "_sources")
    return target

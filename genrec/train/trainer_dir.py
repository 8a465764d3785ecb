"""The trainer folder of a training stage (`<stage>/trainer/`: trl checkpoints and what a resumed run carries on
with), kept only for the run that wrote it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from genrec.artifacts import write_json
from genrec.config import StrictModel, config_hash


def trainer_dir(stage_dir: Path, config: StrictModel, input_hashes: dict[str, str], resume: bool) -> Path:
    """`stage_dir/trainer/`, emptied unless it was written for this very config and these inputs: only then can
    a killed run resume from it. A checkpoint trained on other inputs (a new SID map, new interests) would
    otherwise be taken for finished training and saved as the result."""
    folder = Path(stage_dir) / "trainer"
    stamp = folder / "stamp.json"
    expected = {"config": config_hash(config), "inputs": input_hashes}
    if folder.exists() and (not resume or not stamp.is_file() or json.loads(stamp.read_text()) != expected):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(stamp, expected)
    return folder

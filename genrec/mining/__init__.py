"""Deep-interest mining (MLIM): chain-of-thought prompts to one or more LLMs about items and users,
cached in SQLite, merged across models into `mine/interests.parquet`."""

from genrec.mining.config import BackendConfig, MiningConfig
from genrec.mining.stage import inputs, run

__all__ = ["BackendConfig", "MiningConfig", "inputs", "run"]

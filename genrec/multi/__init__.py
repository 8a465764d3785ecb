"""Multi-interest retrieval on the shared protocol: the shared base (ComiRec-style extractor), GemiRec, ULIM, DMI."""

from genrec.multi.config import MultiConfig
from genrec.multi.stage import inputs, recommend, run

__all__ = ["MultiConfig", "inputs", "recommend", "run"]

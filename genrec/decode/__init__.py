"""Decoding: the SID trie and constrained beam search (`genrec.decode.trie`, `genrec.decode.hf_beam`), and the
`recommend` stage. Kept light at import; the torch modules are imported by their full names."""

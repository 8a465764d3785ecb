"""Multi-LLM merge with all-MiniLM-L6-v2: near-duplicates of one entity collapse, provenance is kept."""

from __future__ import annotations

from genrec.mining.merge import INTEREST_COLUMNS, Proposal, merge_proposals


def _p(entity: str, interest: str, model: str, kind: str = "item") -> Proposal:
    return Proposal(kind, entity, interest, f"evidence for {interest}", f"{model} reasoning", model, "h")


def test_near_duplicates_merge_per_entity_and_count_agreeing_models() -> None:
    proposals = [
        _p("i1", "Home electronics repair", "vllm:a"), _p("i1", "Teaching children science", "vllm:a"),
        _p("i1", "Repairing home electronics", "openai:b"), _p("i1", "Outdoor camping trips", "openai:b"),
        _p("i1", "Electronics repair at home", "openai:b"),  # same model again: no extra agreement
        _p("i2", "Home electronics repair", "openai:b"),  # another entity: never merged with i1
        _p("i1", "Home electronics repair", "vllm:a", kind="user"),  # same id, other kind
    ]
    table = merge_proposals(proposals, threshold=0.85)
    assert list(table.columns) == INTEREST_COLUMNS
    i1 = table[(table["kind"] == "item") & (table["entity_id"] == "i1")].set_index("interest")
    assert sorted(i1.index) == ["Home electronics repair", "Outdoor camping trips", "Teaching children science"]
    repair = i1.loc["Home electronics repair"]
    assert list(repair["models"]) == ["vllm:a", "openai:b"] and repair["agreement"] == 2
    assert repair["reasoning"] == "vllm:a reasoning"  # the first phrasing and its reasoning are kept
    assert i1.loc["Outdoor camping trips", "agreement"] == 1
    assert len(table) == 5


def test_empty_input_gives_an_empty_table_with_the_contract_columns() -> None:
    table = merge_proposals([], threshold=0.85)
    assert list(table.columns) == INTEREST_COLUMNS and len(table) == 0

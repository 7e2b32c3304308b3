"""The output's dominators on hand-built graphs (node -> parents), worked out by hand: every path from the
input to the output passes through a dominator."""

from __future__ import annotations

from pipeline.model.dominators import dominators


def test_a_chain_is_all_dominators():
    parents = {"in": [], "a": ["in"], "b": ["a"], "out": ["b"]}
    assert dominators(parents, ["in"], "out") == {"a", "b", "out"}


def test_an_inception_block_only_its_concatenation_dominates():
    #        in -> stem -> {b1, b2a -> b2b, pool} -> mixed -> gap -> out
    parents = {"in": [], "stem": ["in"], "b1": ["stem"], "b2a": ["stem"], "b2b": ["b2a"], "pool": ["stem"],
               "mixed": ["b1", "b2b", "pool"], "gap": ["mixed"], "out": ["gap"]}
    assert dominators(parents, ["in"], "out") == {"stem", "mixed", "gap", "out"}


def test_a_residual_block_the_add_dominates_its_inner_convs_do_not():
    parents = {"in": [], "x": ["in"], "c1": ["x"], "c2": ["c1"], "add": ["x", "c2"], "relu": ["add"], "out": ["relu"]}
    assert dominators(parents, ["in"], "out") == {"x", "add", "relu", "out"}


def test_a_dangling_branch_that_never_reaches_the_output_is_not_a_dominator():
    parents = {"in": [], "a": ["in"], "side": ["a"], "b": ["a"], "out": ["b"]}
    assert dominators(parents, ["in"], "out") == {"a", "b", "out"}

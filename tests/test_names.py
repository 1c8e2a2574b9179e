"""The vocabulary: every name is built and read back by one module."""
import pytest

from workbench.names import (Cascade, cascade_label, cascade_of_members, claims_cascade, complete_depths, complete_name,
                             display_name, exit_rules, hybrid_label, hybrid_members, is_reference, member_names,
                             members_label, method_rank,
                             multi_exit_name, pair_text, parse_cascade, parse_depths_option, parse_model, parse_pair,
                             parse_reference, reference_label, static_label, try_parse_model)


@pytest.mark.parametrize("name", ["complete-1L", "complete-12L", "small-2L", "complete-2L-da", "small-6L-da", "deebert",
                                  "deebert-da", "pabee", "probe", "fastbert"])
def test_every_model_name_round_trips(name):
    assert str(parse_model(name)) == name


def test_complete_names_and_their_parts():
    assert complete_name(2) == "complete-2L"
    assert complete_name(2, small=True, regularized=True) == "small-2L-da"
    parsed = parse_model("small-2L-da")
    assert (parsed.family, parsed.depth, parsed.regularized, parsed.is_complete) == ("small", 2, True, True)
    assert multi_exit_name("deebert", regularized=True) == "deebert-da"
    with pytest.raises(ValueError, match="multi-exit kind"):
        multi_exit_name("elasticbert")


@pytest.mark.parametrize("bad", ["complete-L", "complete-2", "complete-2L-dA", "cascade 1L>6L", "deebert2", ""])
def test_unknown_model_names_are_refused(bad):
    with pytest.raises(ValueError, match="not a model name"):
        parse_model(bad)
    assert try_parse_model(bad) is None


def test_complete_depths_keep_only_plain_complete_models():
    models = ["complete-6L", "complete-1L", "complete-1L-da", "small-2L", "deebert", "cascade 1L>6L"]
    assert complete_depths(models) == (1, 6)


def test_cascades_and_their_members():
    assert member_names((1, 2, 6)) == ("complete-1L", "complete-2L", "complete-6L")
    assert member_names((1, 6), regularized=True, small=True) == ("small-1L-da", "complete-6L")
    assert cascade_label((2, 12)) == "cascade 2L>12L"
    assert parse_cascade("cascade+DA 1L>2L>6L") == (Cascade((1, 2, 6)), True)
    assert parse_cascade("cascade 1L") is None and parse_cascade("deebert") is None
    assert cascade_of_members(("complete-1L-da", "complete-6L")) == (Cascade((1, 6)), True)
    assert cascade_of_members(("small-1L", "small-6L")) is None  # the last member is the full backbone's
    assert members_label(("complete-2L", "complete-6L")) == "cascade 2L>6L"
    assert members_label(("complete-2L", "small-6L")) == "cascade complete-2L>small-6L"
    assert claims_cascade("cascade 1>6") and not claims_cascade("deebert")
    assert pair_text((1, 6)) == "1L>6L" and parse_pair("1L>6L") == Cascade((1, 6))
    with pytest.raises(ValueError, match="as depths"):
        parse_pair("1>6")


def test_cascades_of_a_small_backbone():
    cascade = Cascade((1, 6, 12), small=True)
    assert cascade.label() == "cascade small-1L>small-6L>12L"
    assert cascade.label(regularized=True) == "cascade+DA small-1L>small-6L>12L"
    assert cascade.members(regularized=True) == ("small-1L-da", "small-6L-da", "complete-12L")
    assert parse_cascade(cascade.label(regularized=True)) == (cascade, True)
    assert cascade_of_members(("small-2L", "complete-12L")) == (Cascade((2, 12), small=True), False)
    assert members_label(("small-2L-da", "complete-12L")) == "cascade+DA small-2L>12L"
    assert reference_label("random", Cascade((2, 12), small=True)) == "random escalation small-2L>12L"
    for mixed in ("small-1L>2L>12L", "1L>small-2L>12L", "small-1L>small-12L"):
        with pytest.raises(ValueError, match="small-"):
            parse_pair(mixed)
    assert method_rank("cascade small-1L>12L") == 3 and method_rank("cascade+DA small-1L>12L") == 4


def test_hybrid_names():
    assert hybrid_label(1, small=True) == "hybrid small-1L>deebert"
    assert hybrid_members("hybrid small-1L>deebert") == ("small-1L", "deebert")
    assert hybrid_members("hybrid 2L>deebert") == ("complete-2L", "deebert")
    assert hybrid_members("cascade 2L>12L") is None
    assert method_rank("hybrid 2L>deebert") == 5 and static_label(6, small=True) == "static small-6L"


def test_references_static_and_ranks():
    assert reference_label("oracle", (1, 6)) == "oracle cascade 1L>6L"
    assert parse_reference("random escalation 2L>12L") == ("random", "2L>12L")
    assert parse_reference("cascade 1L>6L") is None
    assert is_reference("oracle ceiling 1L>6L") and is_reference("oracle exit") and not is_reference("deebert")
    assert static_label(6) == "static 6L"
    ranked = sorted(["cascade+DA 1L>6L", "pabee", "cascade 1L>6L", "deebert-da", "static 3L", "deebert", "other"],
                    key=method_rank)
    assert ranked == ["static 3L", "deebert-da", "deebert", "pabee", "cascade 1L>6L", "cascade+DA 1L>6L", "other"]


def test_exit_rules_and_display_names():
    assert exit_rules("deebert") == ("entropy", "maxprob") and exit_rules("pabee-da") == ("patience", "maxprob")
    assert exit_rules("complete-1L") is None and exit_rules("anything") is None
    assert display_name("complete-1L-da", 1) == "complete 1L + DA"
    assert display_name("deebert-da", 2) == "DeeBERT + DA exit 2"
    assert display_name("probe", 3) == "probe (pre-trained) 3"


def test_cascades_option():
    assert parse_depths_option("1>6,2>6,1>2>6") == (Cascade((1, 6)), Cascade((2, 6)), Cascade((1, 2, 6)))
    assert parse_depths_option("s1>12,2>12,s1>s6>12") == (Cascade((1, 12), True), Cascade((2, 12)),
                                                          Cascade((1, 6, 12), True))
    for bad in ("1>six", "s1>6>12", "1>s12", "s1>s12"):
        with pytest.raises(ValueError, match="--cascades"):
            parse_depths_option(bad)

"""LineageFiles: the files a stage reads, by role, across the rule -> script boundary and back."""

import pytest

from featureflow.inputs import LineageFiles


def test_named_inputs_round_trip_and_keep_the_lineage_order():
    files = LineageFiles(models=("b", "a"), edge_names=("b__a",), stats={"a": "sa.npz", "b": "sb.npz"},
                         acts={"b": "ab.npz", "a": "aa.npz"}, corr={"b__a": "c.npz"}, sample="s.npz",
                         tokenizer="tok/tokenizer_meta.json")
    named = files.as_input()
    assert named == {"sample": "s.npz", "tokenizer": "tok/tokenizer_meta.json", "stats": ["sb.npz", "sa.npz"],
                     "acts": ["ab.npz", "aa.npz"], "corr": ["c.npz"]}
    back = LineageFiles.from_input(named, files.layout())
    assert back == files and back.tokenizer_dir == "tok" and back.stats["a"] == "sa.npz"
    assert back.tables == {} and back.edges is None  # roles not given stay empty


def test_a_role_given_for_some_models_or_files_that_do_not_zip_are_refused():
    with pytest.raises(ValueError, match=r"LineageFiles.stats: no file for \['b'\]"):
        LineageFiles(models=("a", "b"), stats={"a": "x"}).as_input()
    with pytest.raises(ValueError, match=r"not among the models"):
        LineageFiles(models=("a",), acts={"z": "x"})
    layout = {"models": ["a", "b"], "edges": []}
    with pytest.raises(ValueError, match=r"LineageFiles.acts: 1 files for 2 entries"):
        LineageFiles.from_input({"acts": ["x"]}, layout)
    with pytest.raises(ValueError, match=r"unknown input roles \['table_a'\]"):
        LineageFiles.from_input({"table_a": "x"}, layout)


def test_the_controls_per_edge_roles_round_trip_and_name_their_edges():
    files = LineageFiles(models=("a", "b"), edge_names=("a__b",), corr={"a__b": "c.npz"}, null={"a__b": "n.npz"},
                         criteria={"one_to_one": {"a__b": "o.npz"}, "decoder_cosine": {"a__b": "d.npz"}})
    named = files.as_input()
    assert named == {"corr": ["c.npz"], "null": ["n.npz"], "one_to_one": ["o.npz"], "decoder_cosine": ["d.npz"]}
    assert LineageFiles.from_input(named, files.layout()) == files
    with pytest.raises(ValueError, match=r"LineageFiles.decoder_cosine: \['x__y'\] are not among the edges"):
        LineageFiles(models=("a", "b"), edge_names=("a__b",), criteria={"decoder_cosine": {"x__y": "d.npz"}})
    with pytest.raises(ValueError, match=r"LineageFiles.criteria: \['cosine'\] are not matching criteria"):
        LineageFiles(models=("a", "b"), edge_names=("a__b",), criteria={"cosine": {"a__b": "d.npz"}})
    with pytest.raises(ValueError, match=r"LineageFiles.null: \['x__y'\] are not among the edges"):
        LineageFiles(models=("a", "b"), edge_names=("a__b",), null={"x__y": "n.npz"})

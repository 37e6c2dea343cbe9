"""The no-mixing ablation and the mutation baseline journal what they did: one parent, no donor,
no genes from a donor (no-mixing: and the genes whose layers were shrink-perturbed towards
themselves); the lineage reads it so. PBT-NAS children name both parents."""

from pbtnas.analysis.report.history import load_history
from pbtnas.engine.runner import make_runner
from pbtnas.rundir.store import RunStore


def test_no_mixing_children_have_one_parent_and_no_donor(tmp_path, tiny_config):
    config = tiny_config(algorithm="no-mixing", steps=3, p_donor=0.5)
    make_runner(config, tmp_path / "run", progress=False).start().run()
    children = list(RunStore(tmp_path / "run").iter_events("child_created"))
    assert children
    for e in children:
        assert e["donor"] is None and e["genes_from_donor"] == [] and len(e["parents"]) == 1
        assert e["parents"] == [e["primary"]] and e["self_donor"] is True
    assert any(e["genes_perturbed"] for e in children)
    history = load_history(tmp_path / "run")
    born = [m for m in history.members.values() if m.parents]
    assert born and all(m.donor is None and m.genes_from_donor == [] for m in born)


def test_pbtnas_children_still_name_their_donor(tmp_path, tiny_config):
    make_runner(tiny_config(steps=3, p_donor=0.5), tmp_path / "run", progress=False).start().run()
    children = list(RunStore(tmp_path / "run").iter_events("child_created"))
    assert children and all(e["donor"] is not None and len(e["parents"]) == 2 for e in children)


def test_mutation_children_have_one_parent_and_no_donor(tmp_path, tiny_config):
    """The second member drawn for a mutation child only lost the tournament; it gives nothing."""
    make_runner(tiny_config(algorithm="mutation", steps=4), tmp_path / "run", progress=False).start().run()
    children = list(RunStore(tmp_path / "run").iter_events("child_created"))
    assert children and {e["operator"] for e in children} <= {"mutation:none", "mutation:weights", "mutation:architecture"}
    for e in children:
        assert e["donor"] is None and e["genes_from_donor"] == [] and e["parents"] == [e["primary"]]
    history = load_history(tmp_path / "run")
    born = [m for m in history.members.values() if m.parents]
    assert born and all(m.donor is None and len(m.parents) == 1 for m in born)

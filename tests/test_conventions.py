"""Project conventions that tools can check: Snakemake's linter, one software stack, stage boundaries."""

import ast
import re
import subprocess
import sys
import tomllib

import yaml

from helpers import REPO

STAGES = ("data", "lm", "merge", "sae", "flow", "analysis", "interp", "report")


def pins(requirements: list[str]) -> dict[str, str]:
    return dict(re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", r.strip()).groups() for r in requirements)


def test_conda_env_pins_the_same_stack_as_pyproject():
    """`--sdm conda` jobs get exactly the versions `pip install -e .` installs (snakemake and its plugins run the jobs)."""
    project = pins(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"])
    env = yaml.safe_load((REPO / "envs/featureflow.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(pip) == {k: v for k, v in project.items() if not k.startswith("snakemake")}
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"


def test_snakemake_lint_is_clean():
    run = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--cores", "1"], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0 and "Lints for" not in run.stdout + run.stderr, run.stdout[-3000:] + run.stderr[-3000:]


def test_every_rule_uses_the_one_environment_and_its_job_class():
    rules = {p.name: p.read_text() for p in (REPO / "workflow/rules").glob("*.smk") if p.name != "common.smk"}
    for name, text in rules.items():
        blocks = re.split(r"\n(?=rule \w+:)", text)[1:]
        assert blocks, name
        for block in blocks:
            rule = block.split(":")[0]
            assert "conda:\n        ENV" in block, rule
            classes = set(re.findall(r'job\("(\w+)"\)', block))
            assert len(classes) == 1, f"{rule} takes its threads and resources from one job class, not {classes}"
            assert 'CFG["lm"]' not in block and "CFG[" not in block, rule


def _featureflow_imports(path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("featureflow"):
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("featureflow")]
    return names


def test_stages_import_other_stages_through_their_public_api_only():
    """A stage may use another stage's `__init__` exports, never its modules; the core imports no stage."""
    src = REPO / "src/featureflow"
    for path in src.rglob("*.py"):
        rel = path.relative_to(src).parts
        own = rel[0] if len(rel) > 1 else None
        for module in _featureflow_imports(path):
            parts = module.split(".")
            if len(parts) < 2 or parts[1] not in STAGES or parts[1] == own:
                continue
            assert own is not None, f"core module {path.name} imports the stage {module}"
            assert len(parts) == 2, f"{path.relative_to(REPO)} imports {module}: use `from featureflow.{parts[1]} import ...`"


def test_stage_exports_resolve():
    import importlib

    for stage in STAGES:
        package = importlib.import_module(f"featureflow.{stage}")
        modules = {p.stem for p in (REPO / "src/featureflow" / stage).glob("*.py")}
        for name in package.__all__:
            # an export named like a module would be shadowed by the module once it is imported
            assert name not in modules, f"featureflow.{stage}.{name} is both an export and a module"
            assert getattr(package, name) is not None, f"featureflow.{stage}.{name}"

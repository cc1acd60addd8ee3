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


# Each convention is a function from source text to its violations; each test checks today's
# files and a planted violation, so that a convention test that can no longer fail shows up.

def rule_problems(text: str) -> list[str]:
    """Rules of one .smk file that break the rule conventions: one software environment, one job
    class, a log, and no config read inline (typed settings come from PLAN: PLAN.seed, PLAN.sae, ...).
    A variant (`use rule X as Y with:`) keeps X's environment, job class and log unless it overrides them."""
    problems = []
    for block in re.split(r"\n(?=(?:use )?rule \w+)", text):
        head = re.match(r"(use )?rule (?:\w+ as )?(\w+)", block)
        if not head:
            continue
        variant, rule = head.groups()
        if not variant and "conda:\n        ENV" not in block:
            problems.append(f"{rule}: no `conda: ENV`")
        classes = set(re.findall(r'job\("(\w+)"\)', block))
        if len(classes) > 1 or not (variant or classes):
            problems.append(f"{rule}: threads and resources from one job class, not {sorted(classes)}")
        if not variant and "\n    log:" not in block:
            problems.append(f"{rule}: no log")
        problems += [f"{rule}: reads {m} (use a typed PLAN accessor)" for m in re.findall(r"\b(?:PLAN\.)?config\[[^\]]*\]", block)]
    return problems


def script_problems(text: str) -> list[str]:
    """A rule script that decodes input roles from names, or calls a stage function positionally."""
    problems = [f"decodes input names: {m}" for m in re.findall(r"\.removeprefix\(|\.startswith\(|\binput\[f|\bi\[f", text)]
    tree = ast.parse(text)
    stage_names = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
                   and node.module.split(".")[:2][-1] in STAGES for a in node.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in stage_names and node.args:
            problems.append(f"{node.func.id}(...) called with {len(node.args)} positional argument(s)")
    return problems


def wide_functions(text: str, limit: int = 6) -> list[str]:
    """Public top-level functions with more than `limit` parameters."""
    out = []
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            a = node.args
            n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
            if n > limit:
                out.append(f"{node.name} ({n} parameters)")
    return out


def test_every_rule_uses_one_environment_one_job_class_a_log_and_no_inline_config():
    for path in (REPO / "workflow/rules").glob("*.smk"):
        if path.name != "common.smk":
            assert rule_problems(path.read_text()) == [], path.name
    planted = ('rule bad:\n    output:\n        "x"\n    params:\n        seed=PLAN.config["seed"],\n'
               '    threads: job("light").threads\n    resources:\n        **job("heavy").resources,\n    script:\n        "x.py"\n')
    found = rule_problems(planted)
    assert len(found) == 4 and any("PLAN.config" in f for f in found) and any("no log" in f for f in found), found
    variant = 'use rule bad as worse with:\n    params:\n        seed=config["seed"],\n'
    assert rule_problems(variant) == ['worse: reads config["seed"] (use a typed PLAN accessor)']


# Left out when rules are compared: the lines every rule carries by convention (its job class's
# threads and resources, its software) and a rule's own files (outputs, log, benchmark), where a
# variant of a rule differs from it. What is compared is what a rule does: inputs, params, script.
RULE_BOILERPLATE = re.compile(r'conda:|ENV|resources:|threads: job\("\w+"\)\.threads|\*\*job\("\w+"\)\.resources,')
OWN_FILES = ("output", "log", "benchmark")


def rule_bodies(text: str) -> dict[str, list[str]]:
    """The rules of one .smk file (`rule`, `checkpoint`, `use rule X as Y`): name -> the lines of
    its body, stripped, without blank lines, comments, boilerplate and the rule's own files."""
    bodies: dict[str, list[str]] = {}
    rule = directive = None
    for line in text.splitlines():
        if line[:1].strip() and not line.startswith("#"):  # a top-level statement ends the rule before it
            head = re.match(r"(?:rule|checkpoint) (\w+)|use rule \w+ as (\w+)", line)
            rule = (head.group(1) or head.group(2)) if head else None
            if rule:
                bodies[rule] = []
            directive = None
            continue
        if section := re.match(r" {4}(\w+):", line):
            directive = section.group(1)
        kept = line.strip()
        if rule and kept and not kept.startswith("#") and directive not in OWN_FILES and not RULE_BOILERPLATE.fullmatch(kept):
            bodies[rule].append(kept)
    return bodies


def repeated_blocks(files: dict[str, str], size: int = 6) -> list[str]:
    """Pairs of rules (in any of `files`, name -> text) that share `size` consecutive body lines: a
    variant written out again instead of derived (`use rule X as Y with:`) or a shared helper."""
    first: dict[tuple[str, ...], str] = {}
    pairs: dict[tuple[str, str], str] = {}
    for name, text in files.items():
        for rule, lines in rule_bodies(text).items():
            here = f"{name}:{rule}"
            for i in range(len(lines) - size + 1):
                other = first.setdefault(tuple(lines[i:i + size]), here)
                if other != here:
                    pairs.setdefault((other, here), lines[i])
    return [f"{a} ~ {b} (from `{line}`)" for (a, b), line in pairs.items()]


def test_no_two_rules_share_six_lines():
    files = {p.name: p.read_text() for p in sorted((REPO / "workflow/rules").glob("*.smk"))}
    assert repeated_blocks(files) == []

    def body(rule: str) -> str:
        return re.search(rf"^rule {rule}:\n(.*?)(?=^\S)", files["flow.smk"], re.S | re.M).group(1)

    copy = "rule planted:\n" + body("feature_acts")  # a rule's body again
    variant = "rule planted:\n" + body("correlate").replace("correlate/", "planted/").replace('P("corr")', 'P("planted")')
    for planted, base in ((copy, "feature_acts"), (variant, "correlate")):  # the second: a short rule with its own files
        found = repeated_blocks({**files, "planted.smk": planted})
        assert len(found) == 1 and found[0].startswith(f"flow.smk:{base} ~ planted.smk:planted"), found


def test_scripts_take_inputs_by_role_and_call_stages_with_keywords():
    for path in (REPO / "workflow/scripts").glob("*.py"):
        assert script_problems(path.read_text()) == [], path.name
    planted = ("from featureflow.analysis import build_browser\n"
               "edges = [k.removeprefix('corr_') for k in i.keys() if k.startswith('corr_')]\n"
               "build_browser(i[f'table_{m}'], spec=1)\n")
    assert len(script_problems(planted)) == 4, script_problems(planted)


def test_no_public_function_has_more_than_six_parameters():
    for path in (REPO / "src/featureflow").rglob("*.py"):
        assert wide_functions(path.read_text()) == [], path.relative_to(REPO)
    assert wide_functions("def f(a, b, c, d, e, f, g=1):\n    pass\ndef _g(a, b, c, d, e, f, g):\n    pass\n") == ["f (7 parameters)"]


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


def schema_defaults() -> dict[str, set[str]]:
    """Every scalar default of the config schema, by key name (repr of the value; None left out:
    it means "absent" everywhere)."""
    found: dict[str, set[str]] = {}

    def walk(node: object, key: str) -> None:
        if not isinstance(node, dict):
            return
        if "default" in node and node["default"] is not None and not isinstance(node["default"], dict | list):
            found.setdefault(key, set()).add(repr(node["default"]))
        for name, sub in (node.get("properties") or {}).items():
            walk(sub, name)
        for extra in ("additionalProperties", "items", "then"):
            walk(node.get(extra), key)

    walk(yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text()), "")
    return found


def duplicated_defaults(text: str, defaults: dict[str, set[str]]) -> list[str]:
    """Parameters and dataclass fields named like a schema key whose literal default is the schema's:
    a default kept twice, which drifts the day one of them changes."""
    out = []
    for node in ast.walk(ast.parse(text)):
        pairs: list[tuple[str, ast.expr]] = []
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            pos = a.posonlyargs + a.args
            pairs += [(p.arg, d) for p, d in zip(pos[len(pos) - len(a.defaults):], a.defaults, strict=True)]
            pairs += [(p.arg, d) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
        elif isinstance(node, ast.ClassDef):
            pairs += [(b.target.id, b.value) for b in node.body
                      if isinstance(b, ast.AnnAssign) and b.value is not None and isinstance(b.target, ast.Name)]
        out += [f"{node.name}: {name}={d.value!r}" for name, d in pairs
                if isinstance(d, ast.Constant) and d.value is not None and repr(d.value) in defaults.get(name, ())]
    return out


def test_defaults_live_in_the_schema_only():
    defaults = schema_defaults()
    assert {"'auto'", "'cpu'"} <= defaults["device"] and "0" in defaults["seed"]  # the walk reaches job classes too
    for path in (REPO / "src/featureflow").rglob("*.py"):
        assert duplicated_defaults(path.read_text(), defaults) == [], path.relative_to(REPO)
    threshold = next(iter(defaults["threshold"]))
    for path in (REPO / "src/featureflow/analysis/assets").glob("*.js"):
        assert not re.search(rf"(?<![\w.]){re.escape(threshold)}(?![\w.])", path.read_text()), path.name
    planted = "def f(x, seed=0, threads=999):\n    pass\n\nclass C:\n    seed: int = 3\n    device: str = 'cpu'\n"
    assert duplicated_defaults(planted, defaults) == ["f: seed=0", "C: device='cpu'"]


def folder_file_literals(text: str) -> list[str]:
    """String literals naming a file inside a model, SAE or tokenizer folder (paths.py names them once),
    plain or at the end of a path."""
    from featureflow import paths

    names = {v for k, v in vars(paths).items() if k.isupper() and isinstance(v, str) and "." in v}
    return [node.value for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and (node.value in names or node.value.rsplit("/", 1)[-1] in names)]


def test_file_names_inside_a_folder_come_from_paths():
    for path in (REPO / "src/featureflow").rglob("*.py"):
        if path.name != "paths.py":
            assert folder_file_literals(path.read_text()) == [], path.relative_to(REPO)
    planted = 'cfg = json.loads((Path(d) / "config.json").read_text())\nw = load(f"{d}/model.safetensors")\nx = "lm/a/model.safetensors"\n'
    assert sorted(folder_file_literals(planted)) == ["/model.safetensors", "config.json", "lm/a/model.safetensors"]

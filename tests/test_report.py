"""The report stage: the reproduction table, the landing page, Snakemake's report, and the docs site's
config reference (docs/configuration.md) generated from the schema."""

import copy
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml

from featureflow import paper
from featureflow.report import config_reference, paper_roles, reproduction_rows, scale_rows, tally, to_html, to_markdown
from featureflow.report.render import scale_verdict
from helpers import REPO, chromium_url, snakemake_local

SPEC = {"roots": ["babypython"], "inputs": {"babypython": [], "lua": ["babypython"], "tinystories": ["babypython"],
                                             "luastories": ["lua", "tinystories"]}}


def _sae(l0=30.0, mse=0.001, explained_loss=0.9, dead_fraction=0.0, d_sae=2048, explained_variance=0.8):
    return {"l0": l0, "mse": mse, "explained_loss": explained_loss, "dead_fraction": dead_fraction, "d_sae": d_sae,
            "explained_variance": explained_variance}


def _counts(d_sae=2048, ours=(500, 700, 300, 400)):
    roles = [("features persisting into any fine-tuned child", "babypython", 959),
             ("features traceable to a merge input", "luastories", 1210),
             ("  of which emerged in the inputs (fine-tuning)", "luastories", 729),
             ("  of which persisted from the inputs' ancestors", "luastories", 481)]
    rows = [{"threshold": "0.8", "quantity": "source features persisting", "model": "babypython", "ours": "9", "d_sae": str(d_sae),
             "ours_share": "0.1", "paper": "", "paper_share": ""}]
    for (q, m, theirs), n in zip(roles, ours, strict=True):
        rows.append({"threshold": "0.8", "quantity": q, "model": m, "ours": str(n), "d_sae": str(d_sae),
                     "ours_share": str(round(n / d_sae, 4)), "paper": str(float(theirs)), "paper_share": str(round(theirs / 16384, 4))})
    return rows


def _run(**over):
    """A run of the paper's lineage as `load_run` returns it, every number changeable."""
    models = list(SPEC["inputs"])
    run = {
        "spec": SPEC,
        "sae_metrics": {m: _sae() for m in models},
        "sae_extra": {m: {"settings": {"tokens": 500_000}} for m in models},
        "train_meta": {m: {"tokens_seen": 1_000_000, "arch": {"d_model": 128, "d_mlp": 512, "n_layers": 1}} for m in models[:3]},
        "merge_choice": {"luastories": {"t": 0.36, "t_from": "sweep equilibrium", "base": "babypython",
                                        "merged_accuracy": {"lua": 0.217, "tinystories": 0.2168},
                                        "merged_vs_input": {"lua": -0.23, "tinystories": -0.39},
                                        "merged_vs_base": {"lua": 1.75, "tinystories": 0.21}}},
        "tokenizer": {"vocab_size": 4096},
        "counts": _counts(),
        "case_studies": {"threshold": 0.8,
                         "persisting": {"hypothesis": "assignment", "found": True, "mean_cross_correlation": 0.9,
                                        "models": [{"model": m, "feature": i, "llr": 7.0} for i, m in enumerate(models)],
                                        "links": [{"class": "persisting"}] * 4},
                         "disappearing": {"hypothesis": "exception", "found": True, "feature": {"model": "babypython", "feature": 3, "llr": 11.0},
                                          "partners": [{"model": "lua", "feature": 4, "llr": 8.0, "other_to_hypothesis": 8.2,
                                                        "corr": 0.45, "class": "disappearing"}]}},
        "estimate": {"model": "gpt-4-turbo", "total": {"features": 800, "usd_max": 117.6},
                     "chain_feature_categories_by_tokens": {"babypython": {"chain_features": 100, "punctuation": 20,
                                                                           "formatting": 12, "other": 68}}},
        "interp_summary": None,
        "sample_tokens": 120_000,
    }
    for key, value in over.items():
        run[key] = value
    return run


def _row(rows, text):
    found = [r for r in rows if text in r.quantity]
    assert len(found) == 1, (text, [r.quantity for r in rows])
    return found[0]


@pytest.mark.parametrize(("metrics", "quantity", "mark"), [
    ({"l0": 24.9}, "mean L0", "differs"), ({"l0": 25.0}, "mean L0", "meets"), ({"l0": 35.0}, "mean L0", "meets"),
    ({"l0": 35.1}, "mean L0", "differs"), ({"mse": 0.0067}, "MSE", "differs"), ({"mse": 0.0066}, "MSE", "meets"),
    ({"explained_loss": 0.88}, "explained loss", "differs"), ({"explained_loss": 0.881}, "explained loss", "meets"),
    ({"dead_fraction": 0.02}, "dead features", "differs"), ({"dead_fraction": 0.01}, "dead features", "meets"),
])
def test_sae_rows_are_marked_by_the_papers_targets(metrics, quantity, mark):
    run = _run()
    run["sae_metrics"]["lua"] = _sae(**metrics)
    assert _row(reproduction_rows(run), f"lua: {quantity}").mark == mark
    assert _row(reproduction_rows(run), f"babypython: {quantity}").mark == "meets"


def test_merge_counts_cases_and_categories_are_marked_by_their_criteria():
    rows = reproduction_rows(_run())
    assert _row(rows, "equilibrium t").mark == "differs"                     # 0.36: neither 0.58 nor 0.42
    assert _row(rows, "accuracy on the lua vs the tinystories").mark == "meets"  # 0.217 vs 0.2168
    assert _row(rows, "accuracy vs lua on its own").mark == "meets"          # -23% vs -20%
    assert _row(rows, "accuracy vs tinystories on its own").mark == "differs"
    assert _row(rows, "on lua's domain").mark == "differs" and _row(rows, "on tinystories's domain").mark == "meets"
    # the paper's shares are 5.9% / 7.4% / 4.4% / 2.9% of 16384; ours are 24% / 34% / 15% / 20% of 2048
    assert all(r.mark == "differs" for r in rows if "Feature flow" in r.section)
    assert _row(rows, "punctuation, by top tokens").mark == "meets" and _row(rows, "punctuation, by top tokens").ours == "20.0%"
    assert _row(rows, "formatting, by top tokens").mark == "differs"         # 12% vs 5%
    assert _row(rows, "assignment hypothesis, lua #1").paper == "6.58"      # the paper's Lua LLR
    assert _row(rows, "assignment hypothesis, lua #1").mark == "meets"      # 7.0 within 1 nat of 6.58
    assert _row(rows, "correlation with the partner").mark == "meets"       # 0.45 vs 0.4081
    assert _row(rows, "disappears").mark == "meets"

    choice = copy.deepcopy(_run()["merge_choice"])
    choice["luastories"]["t"] = 0.44                                         # the paper's t read from the other end
    assert _row(reproduction_rows(_run(merge_choice=choice)), "equilibrium t").mark == "meets"
    choice["luastories"] |= {"t": 0.5, "t_from": "config"}
    assert _row(reproduction_rows(_run(merge_choice=choice)), "equilibrium t").mark == "not run"

    near = _counts(d_sae=16384, ours=(1000, 1210, 600, 481))                 # 1000 / 959 and 600 / 729 are within 25%
    marks = [r.mark for r in reproduction_rows(_run(counts=near)) if "Feature flow" in r.section]
    assert marks == ["meets"] * 4
    far = _counts(d_sae=16384, ours=(1300, 1210, 729, 481))                  # 1300 / 959 is 36% above
    assert [r.mark for r in reproduction_rows(_run(counts=far)) if "Feature flow" in r.section][0] == "differs"


def test_autointerp_rows_are_not_run_without_an_endpoint_and_filled_with_one():
    rows = reproduction_rows(_run())
    interp = [r for r in rows if "Autointerp" in r.section or "by autointerp" in r.quantity]
    assert interp and all(r.mark == "not run" for r in interp)
    assert "$0.147 per feature" in _row(rows, "cost per explained").criterion  # 117.6 / 800
    summary = {"endpoint_model": "local", "features": 10, "cost_usd": 0.5,
               "groups": {"persisting": {"mean_score": 0.4, "median_score": 0.35, "scored": 6},
                          "other": {"mean_score": 0.2, "median_score": 0.1, "scored": 4}},
               "persisting_categories_by_explanation": {"punctuation": 0.25, "formatting": 0.125, "other": 0.625}}
    rows = reproduction_rows(_run(interp_summary=summary))
    assert _row(rows, "cost per explained").ours == "0.050" and _row(rows, "cost per explained").mark == "meets"
    assert _row(rows, "punctuation, by autointerp").mark == "meets" and _row(rows, "formatting, by autointerp").mark == "differs"
    assert _row(rows, "score of persisting").ours == "0.400 / 0.350 (6 scored)"
    assert _row(rows, "score of persisting").mark == "no paper number"
    assert tally(rows)["not run"] == 0


def test_without_pngs_no_target_or_landing_item_is_a_png_and_every_figure_keeps_its_html():
    from featureflow.plan import load_plan
    from featureflow.report import landing_files, landing_sections
    from helpers import SCHEMA

    micro = yaml.safe_load((REPO / "config/micro.yaml").read_text()) | {"interp": {"enabled": True, "base_url": "http://127.0.0.1:1/v1"}}
    with_png = load_plan(copy.deepcopy(micro), SCHEMA, workdir=REPO)
    without = load_plan(micro | {"figures": {"png": False}}, SCHEMA, workdir=REPO)
    pngs = {t for t in with_png.targets() if t.endswith(".png")}
    assert len(pngs) == 6, pngs  # curves (2), merge sweep, Sankey, threshold curve, Figure 6
    assert not [t for t in without.targets() + landing_files(without) if t.endswith(".png")]
    assert {t.removesuffix(".png") + ".html" for t in pngs} <= set(without.targets()), "each figure's HTML is still built"
    assert set(without.targets()) == set(with_png.targets()) - pngs | {t.removesuffix(".png") + ".html" for t in pngs}
    items = [x for sec in landing_sections(without) for x in sec["items"]]
    assert not any("thumb" in x for x in items) and any(x["path"].endswith("feature_density.html") for x in items)
    thumbs = [x["thumb"] for sec in landing_sections(with_png) for x in sec["items"] if "thumb" in x]
    assert len(thumbs) == 10 and all(t.endswith(".png") for t in thumbs)  # the six above and four feature densities


def test_paper_roles_follow_the_lineage_not_the_names():
    spec = {"roots": ["base"], "inputs": {"base": [], "x": ["base"], "y": ["base"], "extra": ["x"], "extra_y": ["extra", "y"],
                                          "xy": ["y", "x"]}}
    # xy, not the earlier extra_y, plays LuaStories: both its inputs are fine-tunes of the root
    assert paper_roles(spec) == {"base": "babypython", "y": "lua", "x": "tinystories", "xy": "luastories"}
    del spec["inputs"]["xy"]
    assert paper_roles(spec) == {"base": "babypython", "extra": "lua", "y": "tinystories", "extra_y": "luastories"}
    spec["inputs"]["xy"] = ["y", "x"]
    run = _run(spec=spec)
    run["case_studies"]["persisting"]["models"] = [{"model": m, "feature": 1, "llr": 7.0} for m in ("base", "y", "extra")]
    rows = reproduction_rows(run)
    assert _row(rows, "hypothesis, y #1").paper == "6.58"                   # y plays Lua: the merge's first input
    assert _row(rows, "hypothesis, extra #1").mark == "no paper number"


def test_a_lineage_without_a_merge_or_case_studies_gets_rows_for_what_it_has():
    spec = {"roots": ["base"], "inputs": {"base": [], "child": ["base"]}}
    cases = {"threshold": 0.8, "persisting": {"hypothesis": "assignment", "found": False},
             "disappearing": {"hypothesis": "exception", "found": False}}
    run = _run(spec=spec, sae_metrics={"base": _sae(), "child": _sae(l0=40.0)}, merge_choice={}, case_studies=cases,
               counts=_counts()[:2])
    rows = reproduction_rows(run)
    assert not [r for r in rows if r.section.startswith("Merging")]
    assert _row(rows, "child: mean L0").mark == "differs"
    assert _row(rows, "a persisting 'assignment' feature").ours == "none found"
    assert _row(rows, "a 'exception' feature of the root").mark == "differs"
    assert [r.quantity for r in rows if "Feature flow" in r.section] == ["features persisting into any fine-tuned child (babypython)"]
    md = to_markdown(scale_rows(run), rows)
    assert [line.split(" (")[0] for line in md.splitlines() if line.startswith("## ")] == [
        "## Sparse autoencoders", "## Feature flow at threshold 0.8", "## Persisting features by category",
        "## Case study", "## Case study", "## Autointerp"]


def test_scale_block_tells_a_demo_from_a_paper_scale_run():
    demo = scale_rows(_run())
    assert not any(s.at_paper_scale for s in demo[:-1]) and demo[-1].at_paper_scale  # only the threshold matches
    assert "not** at the paper's scale" in scale_verdict(demo)
    s = paper.SCALE
    big = _run(tokenizer={"vocab_size": 32000}, sample_tokens=3_000_000,
               sae_metrics={m: _sae(d_sae=16384) for m in SPEC["inputs"]},
               sae_extra={m: {"settings": {"tokens": 15_000_000}} for m in SPEC["inputs"]},
               train_meta={"babypython": {"tokens_seen": s["base_tokens"], "arch": {"d_model": 512, "d_mlp": 1024, "n_layers": 1}}})
    scale = scale_rows(big)
    assert all(x.at_paper_scale for x in scale), scale
    assert scale_verdict(scale) == "This run is at the paper's scale."
    assert [x.ours for x in scale][:2] == ["32000", "512 / 1024 / 1"] and scale[2].ours == "335.6M"


def test_markdown_and_html_hold_every_row():
    rows, scale = reproduction_rows(_run()), scale_rows(_run())
    md, html = to_markdown(scale, rows), to_html(scale, rows)
    assert md.count("\n| ") - md.count("\n| quantity") - md.count("\n| scale") == len(rows) + len(scale)
    assert html.count("<tr><td") == len(rows) + len(scale)
    assert "<script" not in html and html.count('class="mark ') == len(rows)


@pytest.mark.parametrize("off", [{}, {"lua": {"l0": 8700.0, "d_sae": 16384, "explained_variance": -2.8},
                                      "luastories": {"explained_loss": -0.2}}], ids=["on-target", "two-off-target"])
def test_off_target_saes_are_named_on_the_first_screen_of_every_page(off, tmp_path, monkeypatch):
    """index.html, reproduction.html and reproduction.md open with a warning naming each SAE far off target
    (before the scale block), and say nothing of it when every SAE is fine."""
    import featureflow.report.jobs as jobs

    run = _run()
    for model, metrics in off.items():
        run["sae_metrics"][model] = _sae(**metrics)
    monkeypatch.setattr(jobs, "load_run", lambda *args: run)
    out = {name: tmp_path / name for name in ("reproduction.md", "reproduction.html", "index.html")}
    pages = jobs.ReportPages(md=out["reproduction.md"], html=out["reproduction.html"], index=out["index.html"])
    jobs.write_report(files={}, spec=SPEC, sample_tokens=0, sections=[], results_dir="results", pages=pages)
    md, html, index = (out[n].read_text() for n in out)
    if not off:
        for text in (md, html, index):
            assert "far off target" not in text and "off-target" not in text
        return
    assert md.index("**Warning: SAEs far off target: lua, luastories.") < md.index("This run is **not** at the paper's scale")
    assert "> - lua: L0 8,700.0 > 350 (10x the paper's 25-35); explained variance -2.800 < 0" in md
    assert "> - luastories: explained loss -0.200 < 0 (the paper: > 0.88)" in md
    assert "not findings" in md and "babypython:" not in md.split("This run is")[0]
    for page in (html, index):
        body = page.split("<body>")[1]
        assert body.index('<div class="off-target"') < body.index('<div class="scale">'), "the warning comes first"
        assert body.index("</h1>") < body.index('<div class="off-target"') < body.index("</h1>") + 10
        box = body.split('<div class="off-target"')[1].split("</div>")[0]
        assert "<li><b>lua</b>: L0 8,700.0 &gt; 350" in box and "<li><b>luastories</b>: explained loss -0.200" in box
        assert "not findings" in box and "babypython" not in box


# --- the docs site's configuration reference (docs/configuration.md) ------------------------------------------------

CONFIG_PAGE = "docs/configuration.md"


def test_docs_config_reference_is_generated_from_the_schema():
    page = (REPO / CONFIG_PAGE).read_text()
    assert config_reference() in page, f"{CONFIG_PAGE}'s config reference is stale: python -m featureflow.report.schema_doc {CONFIG_PAGE}"
    check = subprocess.run([sys.executable, "-m", "featureflow.report.schema_doc", CONFIG_PAGE, "--check"], cwd=REPO,
                           capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src")})
    assert check.returncode == 0, check.stdout + check.stderr


def test_reference_check_fails_when_the_schema_changes(tmp_path):
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    schema["properties"]["threshold"]["default"] = 0.7
    changed = tmp_path / "schema.yaml"
    changed.write_text(yaml.safe_dump(schema))
    assert config_reference(changed) not in (REPO / CONFIG_PAGE).read_text()
    assert "| `threshold` | number or string in [0, 1] | `0.7` |" in config_reference(changed)


def test_every_schema_key_has_a_description():
    for line in config_reference().splitlines():
        if line.startswith("| `"):
            assert not line.rstrip().endswith("|  |"), f"no description in the schema for {line.split('|')[1]}"


def test_job_class_descriptions_name_exactly_their_rules():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    classes = schema["properties"]["resources"]["properties"]
    own, bases = {}, {}  # rule -> the job class its body names; variant -> the rule it is derived from
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        for head, body in re.findall(r"^((?:use )?rule [^\n]*):\n(.*?)(?=^(?:use )?rule |\Z)", smk.read_text(), re.S | re.M):
            rule, base, variant = re.fullmatch(r"rule (\w+)|use rule (\w+) as (\w+) with", head).groups()
            if variant:
                bases[variant] = base
            match = re.search(r'job\("(\w+)"\)', body)
            if match:
                own[rule or variant] = match.group(1)
    rules = {}
    for rule in own.keys() | bases.keys():
        base = rule
        while base not in own and base in bases:  # `use rule X as Y with:` keeps X's job class
            base = bases[base]
        if base in own:
            rules.setdefault(own[base], set()).add(rule)
    all_rules = set().union(*rules.values())
    for cls, node in classes.items():
        named = set(re.findall(r"\w+", node["description"])) & all_rules
        assert named == rules.get(cls, set()), (cls, sorted(named ^ rules.get(cls, set())))


# --- the micro workflow's report -----------------------------------------------------------------------------------

def _local_links(dom: str, page: Path) -> list[Path]:
    links = re.findall(r'(?:href|src)="([^"#]+)(?:#[^"]*)?"', dom)
    out = []
    for link in links:
        url = urlparse(link)
        if url.scheme in ("http", "https", "data", "mailto"):
            continue
        out.append((page.parent / unquote(url.path)).resolve() if url.scheme != "file" else Path(unquote(url.path)))
    return out


def test_micro_report_pages_render_and_every_link_resolves(micro_run):
    wd, _ = micro_run
    res = wd / "results"
    md = (res / "reproduction.md").read_text()
    for section in ("Sparse autoencoders", "Merging luastories", "Feature flow at threshold", "Case study (a)", "Autointerp"):
        assert f"## {section}" in md, md[:2000]
    assert "**not** at the paper's scale" in md and "| SAE features (d_sae) | 16384 | 128 (below) |" in md
    made = snakemake_local(wd, "--configfile", str(REPO / "config/micro.yaml"), "--report", "results/report.html")
    assert made.returncode == 0, made.stderr[-3000:]
    report = (res / "report.html").read_text()
    for text in ("0. Reproduction", "5. Feature flow", "6. Case studies", "fig2_sankey.png", "The paper's Figure 2"):
        assert text in report, text
    zipped = snakemake_local(wd, "--configfile", str(REPO / "config/micro.yaml"), "--report", str(wd / "report.zip"))
    assert zipped.returncode == 0, zipped.stderr[-3000:]
    names = zipfile.ZipFile(wd / "report.zip").namelist()
    assert any(n.endswith("fig2_sankey.png") for n in names) and any(n.endswith("reproduction.html") for n in names)

    pages = [res / "index.html", res / "reproduction.html", res / "browser/lua/index.html"]
    for page in pages:
        dom, log = chromium_url(page.as_uri())
        assert "CONSOLE" not in log, log[-2000:]
        links = _local_links(dom, page)
        assert links, page
        missing = [str(p) for p in links if not p.exists()]
        assert not missing, (page, missing)
    dom, _ = chromium_url((res / "index.html").as_uri())
    assert dom.count("<img") >= 1 + 1 + 4 and 'href="reproduction.html"' in dom and 'href="report.html"' in dom


def test_compare_results_masks_timings_and_plotly_ids_and_lists_real_differences(tmp_path):
    """scripts/compare_results.py: what a rerun may change (wall-clock fields, plotly's div ids, logs) is not a
    difference; a changed number, a missing file and an extra file are."""
    a, b = tmp_path / "a", tmp_path / "b"
    for root, elapsed, uid, loss in ((a, 1.5, "0f0e0d0c-1111-2222-3333-444455556666", 0.25),
                                     (b, 9.0, "aaaabbbb-1111-2222-3333-444455556666", 0.25)):
        (root / "lm" / "m").mkdir(parents=True)
        (root / "lm/m/train_meta.json").write_text(json.dumps({"train_seconds": elapsed, "loss": loss}))
        (root / "fig.html").write_text(f'<div id="{uid}"></div>')
        (root / "log.csv").write_text(f"step,loss,elapsed_s\n1,{loss},{elapsed}\n")
        (root / "logs").mkdir()
        (root / "logs" / "x.log").write_text(str(elapsed))
    run = lambda: subprocess.run([sys.executable, str(REPO / "scripts/compare_results.py"), str(a), str(b)],  # noqa: E731
                                 capture_output=True, text=True)
    same = run()
    assert same.returncode == 0 and "0 differ;" in same.stdout and "3 differ only in timings/ids" in same.stdout, same.stdout
    (b / "log.csv").write_text("step,loss,elapsed_s\n1,0.26,9.0\n")
    (a / "only_here.npz").write_bytes(b"x")
    changed = run()
    assert changed.returncode == 1 and "differ: log.csv" in changed.stdout and "only_a: only_here.npz" in changed.stdout
    (a / "old").mkdir()
    (a / "old/m.npz").write_bytes(b"same")
    (b / "new").mkdir()
    (b / "new/m.npz").write_bytes(b"same")
    renamed = subprocess.run([sys.executable, str(REPO / "scripts/compare_results.py"), str(a), str(b), "--rename", "old/=new/"],
                             capture_output=True, text=True)
    plain = run()
    assert "only_a: old/m.npz" in plain.stdout and "only_b: new/m.npz" in plain.stdout
    assert "old/m.npz" not in renamed.stdout and "new/m.npz" not in renamed.stdout, renamed.stdout
    assert "only_a: only_here.npz" in renamed.stdout, "a rename maps folders, it does not hide other files"

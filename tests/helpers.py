"""Small builders shared by the tests."""

from __future__ import annotations

import copy
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DOC_SEP = "\n\x1e\n"

WORDS = {
    "english": "the little house stood by a quiet river and every morning she walked to town".split(),
    "python": "def return import class self if else for in range print None True lambda".split(),
    "lua": "local function end then elseif nil require return table pairs ipairs".split(),
    "stories": "once upon a time there was a happy dog who loved to play ball".split(),
}


def write_corpora(root: Path, n_docs: int = 30, words_per_doc: int = 120, seed: int = 0) -> dict[str, Path]:
    """Write one small text file per corpus (documents separated by U+001E lines)."""
    rng = random.Random(seed)
    paths = {}
    (root / "data").mkdir(parents=True, exist_ok=True)
    for name, words in WORDS.items():
        docs = [" ".join(rng.choice(words) for _ in range(words_per_doc)) + f"\n# doc {i}" for i in range(n_docs)]
        paths[name] = root / "data" / f"{name}.txt"
        paths[name].write_text(DOC_SEP.join(docs), encoding="utf-8")
    return paths


def lineage_config(**overrides: Any) -> dict[str, Any]:
    """The paper's lineage over the corpora of `write_corpora` (paths relative to its root)."""
    cfg: dict[str, Any] = {
        "seed": 0,
        "corpora": {name: {"files": [f"data/{name}.txt"]} for name in WORDS},
        "tokenizer": {"kind": "bpe", "vocab_size": 300},
        "models": {
            "babypython": {"train_on": ["english", "python"]},
            "lua": {"parent": "babypython", "train_on": ["lua"]},
            "tinystories": {"parent": "babypython", "train_on": ["stories"]},
            "luastories": {"merge": ["lua", "tinystories"], "method": "slerp", "t": "auto"},
        },
    }
    cfg = copy.deepcopy(cfg)
    cfg.update(overrides)
    return cfg


def dump_yaml(data: Any, path: Path) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def settings(cls: type, **overrides: Any) -> Any:
    """Settings type `cls` with the schema's defaults, some of them overridden."""
    from featureflow.settings import defaults

    return defaults(cls, **overrides)


def architecture(**shape: Any) -> Any:
    """An Architecture with the schema's defaults and the given shape (d_model, d_mlp, ...)."""
    from featureflow.settings import Architecture

    return settings(Architecture, **shape)


def _no_other_keys(kw: dict[str, Any], record: type, *names: str) -> None:
    """A typo in a call_train / call_sae key fails as a wrong keyword argument would."""
    from dataclasses import fields

    other = set(kw) - {f.name for f in fields(record)} - set(names)
    if other:
        raise TypeError(f"unexpected arguments: {sorted(other)}")


def job_resources(device: str = "cpu", threads: int = 2, **switches: Any) -> Any:
    """Resources of a job outside Snakemake (the schema's defaults) with some switches (compile, tensorboard) set."""
    import dataclasses

    from featureflow.settings import Resources

    return dataclasses.replace(Resources.local(device, threads), **switches)


def call_train(kw: dict[str, Any]) -> dict[str, Any]:
    """train_model from JSON-able keyword arguments (a subprocess can pass them on its command line).

    The paths of `TrainFiles` come as flat keys (mixture_npy, ..., ckpt_dir), a fine-tune's parent as
    `parent_dir` and `parent`; `settings` holds `architecture` and `schedule` overrides plus the run
    options; `resources` is {"device", "threads"}.
    """
    from dataclasses import fields

    from featureflow.lm import ParentModel, TrainFiles, train_model
    from featureflow.settings import TrainJob, TrainSettings

    s = kw["settings"]
    job = TrainJob(architecture(**s["architecture"]), settings(TrainSettings, **s["schedule"]),
                   checkpoint_every=s.get("checkpoint_every", 500), keep_checkpoints=s.get("keep_checkpoints", False),
                   log_every=s.get("log_every", 50))
    _no_other_keys(kw, TrainFiles, "name", "settings", "seed", "resources", "parent_dir", "parent")
    files = TrainFiles(**{f.name: kw[f.name] for f in fields(TrainFiles)})
    parent = ParentModel(model_dir=kw["parent_dir"], name=kw.get("parent")) if kw.get("parent_dir") is not None else None
    return train_model(name=kw["name"], files=files, settings=job, seed=kw["seed"],
                       resources=job_resources(**kw.get("resources", {})), parent=parent)


def call_sae(kw: dict[str, Any]) -> dict[str, Any]:
    """train_sae from JSON-able keyword arguments: the paths of `SAEFiles` as flat keys (model_dir, ...,
    ckpt_dir); `settings` overrides the schema's `sae` defaults."""
    from dataclasses import fields

    from featureflow.sae import SAEFiles, train_sae
    from featureflow.settings import SAESettings

    _no_other_keys(kw, SAEFiles, "name", "settings", "seed", "resources")
    files = SAEFiles(**{f.name: kw[f.name] for f in fields(SAEFiles)})
    return train_sae(name=kw["name"], files=files, settings=settings(SAESettings, **kw["settings"]), seed=kw["seed"],
                     resources=job_resources(**kw.get("resources", {})))


def snakemake_local(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """This repository's workflow, run locally on 2 cores in `workdir`."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2", "-d", str(workdir), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def micro_lock(wd: Path) -> Any:
    """The file lock of the shared micro run in `wd` (tests/conftest.py `micro_run`): held while it is
    built, while a test reruns jobs in it, and while a test copies it, across pytest-xdist workers."""
    from filelock import FileLock

    return FileLock(str(wd.parent / "micro_run.lock"))


def chromium_url(url: str) -> tuple[str, str]:
    """(DOM after load, Chromium's log, console messages included) of a page in headless Chromium."""
    import shutil

    import pytest

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no Chromium (apt-get install chromium)")
    run = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                          "--virtual-time-budget=5000", "--dump-dom", url], capture_output=True, text=True, timeout=120)
    return run.stdout, run.stderr


def browser_js(expression: str, data: Any) -> Any:
    """`expression` evaluated by node with browser.js's exports as `B` and `data` (JSON) as `data`; its JSON value."""
    import json
    import shutil

    import pytest

    from featureflow.analysis.browser import ASSETS

    node = shutil.which("node")
    if node is None:
        assert not os.environ.get("FEATUREFLOW_REQUIRE_NODE"), "FEATUREFLOW_REQUIRE_NODE is set but node is missing"
        pytest.skip("no node (apt-get install nodejs)")
    script = (f"const B = require({json.dumps(str(ASSETS / 'browser.js'))});\n"
              "const data = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n"
              f"process.stdout.write(JSON.stringify({expression}));\n")
    run = subprocess.run([node, "-e", script], input=json.dumps(data), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


# Appended to a plotly Sankey's HTML: every visible text (annotations and plotly's node labels) with
# the links and nodes it overlaps (points on a grid over its box, tested against each link's fill),
# and the drawn node heights, written into the page as JSON for --dump-dom.
SANKEY_PROBE = """<script>
window.addEventListener("load", function () { setTimeout(function () {
  var all = function (q) { return Array.prototype.slice.call(document.querySelectorAll(q)); };
  var links = all("path.sankey-link"), nodes = all(".node-rect");
  var texts = all(".annotation text, .node-label").filter(function (t) {
    return t.textContent.trim() && t.getBoundingClientRect().width > 0; });
  var out = texts.map(function (t) {
    var r = t.getBoundingClientRect(), hits = {};
    for (var i = 0; i <= 20; i++) { for (var j = 0; j <= 6; j++) {
      var x = r.left + r.width * i / 20, y = r.top + r.height * (0.15 + 0.7 * j / 6);
      links.forEach(function (p, k) {
        if (p.isPointInFill(new DOMPoint(x, y).matrixTransform(p.getScreenCTM().inverse()))) { hits["link " + k] = 1; } });
      nodes.forEach(function (n, k) {
        var b = n.getBoundingClientRect();
        if (x >= b.left && x <= b.right && y >= b.top && y <= b.bottom) { hits["node " + k] = 1; } });
    } }
    return {text: t.textContent, hits: Object.keys(hits)};
  });
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify({texts: out, links: links.length,
    node_heights: nodes.map(function (n) { return n.getBoundingClientRect().height; })});
  document.body.appendChild(pre);
}, 500); });
</script>"""


def sankey_probe(html_path: Path) -> dict[str, Any]:
    """SANKEY_PROBE's findings on the Sankey figure in `html_path`, rendered by headless Chromium."""
    import html
    import json
    import re

    probe = html_path.with_name(html_path.stem + "_probe.html")
    probe.write_text(html_path.read_text().replace("</body>", SANKEY_PROBE + "</body>"))
    dom, log = chromium_url(probe.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, log[-2000:]
    return json.loads(html.unescape(found.group(1)))

"""Autointerp against a real chat-completions server on loopback: faults, cache, budget, secrets, prices."""

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from chat_server import ChatServer

from featureflow.analysis.features import StatsSizes, feature_stats
from featureflow.config import ConfigError
from featureflow.interp.client import ChatClient, Ledger, is_loopback
from featureflow.interp.prompts import parse_simulation
from featureflow.interp.run import Records, chain_features, interpret_model, select_features
from featureflow.settings import InterpFeatures, InterpSettings
from helpers import settings as defaults

SECRET = "sk-test-SECRET-4f1e2d"


def client(s, cache_dir):
    return ChatClient(s, cache_dir, Ledger(s.budget_usd))


def settings(server, **over):
    s = {"base_url": server.base_url, "model": "test-model", "api_key_env": "FF_TEST_KEY", "temperature": 0.0,
         "max_tokens_explain": 40, "max_tokens_simulate": 120, "timeout_s": 1.0, "max_retries": 3, "backoff_s": 0.01,
         "concurrency": 2, "budget_usd": 10.0, "json_mode": True, "chars_per_token": 4.0,
         "prices": {"test-model": {"input": 1000.0, "output": 2000.0}},
         "records": {"explain_top": 3, "explain_random": 1, "simulate_top": 2, "simulate_random": 1}}
    return defaults(InterpSettings, **{**s, **over})


@pytest.fixture
def records():
    """Twelve features over 200 blocks of 8 tokens; feature f fires on token f (and a little elsewhere)."""
    rng = np.random.default_rng(0)
    vocab = [f"t{i}" for i in range(30)] + ["</script>", " ="]
    blocks = rng.integers(0, len(vocab), (200, 8))
    tokens = blocks.reshape(-1)
    dense = np.zeros((tokens.size, 12), dtype=np.float32)
    for f in range(12):
        dense[tokens == f, f] = rng.uniform(1, 3, (tokens == f).sum())
    acts = sp.csr_matrix(dense)
    stats = feature_stats(acts, tokens, len(vocab), StatsSizes(top_contexts=10, top_tokens=3, min_token_count=1, bins=4))
    csc = acts.tocsc()
    csc.sort_indices()
    return Records(csc, stats, blocks, vocab)


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_full_run_survives_faults_then_a_rerun_sends_nothing(records, tmp_path, monkeypatch):
    monkeypatch.setenv("FF_TEST_KEY", SECRET)
    features = [(f, "persisting" if f < 4 else "other") for f in range(8)]
    with ChatServer(faults=["429", "500", "timeout", "badjson"], malformed_every=7) as server:
        s = settings(server)
        first = interpret_model("m", features, records, client(s, tmp_path / "cache"), 0, tmp_path / "m.jsonl")
        sent = len(server.requests)
        rows = read(tmp_path / "m.jsonl")
        assert [r["feature"] for r in rows] == list(range(8))
        assert all(r["explanation"] == f'the token "t{r["feature"]}"' for r in rows)
        scored = [r for r in rows if r["score"] is not None]
        assert len(scored) >= 6 and all(r["score"] > 0.9 for r in scored)  # the simulator reads the explanation right
        malformed = [f for r in rows for f in r["failures"]]
        assert malformed and all(f["stage"] == "simulate" and f["raw"].startswith("Sure!") for f in malformed)
        assert first["requests_sent"] == sent - 4 == 8 * 4 and first["spent_usd"] > 0  # 4 faulty attempts were retried
        assert all(a == f"Bearer {SECRET}" for a in server.authorizations)
        again = interpret_model("m", features, records, client(s, tmp_path / "cache"), 0, tmp_path / "m2.jsonl")
        assert len(server.requests) == sent and again["requests_sent"] == 0 and again["cache_hits"] == 32
    second = read(tmp_path / "m2.jsonl")
    assert [(r["explanation"], r["score"]) for r in second] == [(r["explanation"], r["score"]) for r in rows]
    assert all(r["cost_usd"] == 0 for r in second)
    for path in tmp_path.rglob("*"):  # the key is nowhere on disk
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


def test_budget_cap_stops_before_the_request_that_could_pass_it(records, tmp_path, monkeypatch):
    monkeypatch.setenv("FF_TEST_KEY", SECRET)
    features = [(f, "other") for f in range(6)]
    with ChatServer() as server:
        s = settings(server, concurrency=1)
        interpret_model("m", features, records, client(s, tmp_path / "free"), 0, tmp_path / "free.jsonl")  # what each feature costs
        costs = [r["cost_usd"] for r in read(tmp_path / "free.jsonl")]
        s = dataclasses.replace(s, budget_usd=sum(costs[:3]) + 0.3 * min(costs))  # three features, and not a whole fourth
        before = len(server.requests)
        summary = interpret_model("m", features, records, client(s, tmp_path / "capped"), 0, tmp_path / "m.jsonl")
        rows = read(tmp_path / "m.jsonl")
    assert summary["spent_usd"] <= s.budget_usd and summary["requests_sent"] == len(server.requests) - before
    complete = [r["feature"] for r in rows if r["score"] is not None and not r["failures"]]
    assert complete == list(range(len(complete))) and len(complete) >= 2  # (a request reserves its worst case first)
    refused = [r for r in rows if any(f["error"].startswith("budget") for f in r["failures"])]
    stop = refused[0]["feature"]
    assert stop == len(complete) and all(r["requests"] == 0 for r in rows[stop + 1:])  # it stopped there
    first = next(f["error"] for f in refused[0]["failures"] if f["error"].startswith("budget"))
    spent, worst = (float(x) for x in re.search(r"spent ([\d.]+), next request up to ([\d.]+)", first).groups())
    assert spent + worst > s.budget_usd                                                # and only because it had to


def test_no_key_for_a_remote_endpoint_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.delenv("FF_NO_SUCH_KEY", raising=False)
    s = defaults(InterpSettings, base_url="https://api.example.com/v1", api_key_env="FF_NO_SUCH_KEY", model="m",
                 prices={"m": {"input": 1.0, "output": 1.0}})
    with pytest.raises(ConfigError, match="environment variable FF_NO_SUCH_KEY is not set"):
        ChatClient(s, tmp_path, Ledger(1.0))


@pytest.mark.parametrize("url, loopback", [
    ("http://127.0.0.1:8000/v1", True), ("http://localhost/v1", True), ("http://[::1]:5/v1", True),
    ("http://127.0.0.2:8000/v1", False), ("http://localhost.example.com/v1", False), ("http://127.0.0.1.nip.io/v1", False),
    ("https://api.openai.com/v1", False), (None, False)])
def test_only_this_machines_own_addresses_are_free(url, loopback):
    assert is_loopback(url) is loopback


def test_a_remote_endpoint_without_a_price_sends_nothing(records, tmp_path, monkeypatch):
    """127.0.0.2 is loopback to the kernel but remote to featureflow: no price, no request."""
    monkeypatch.setenv("FF_TEST_KEY", SECRET)
    features = [(f, "other") for f in range(3)]
    with ChatServer(host="127.0.0.2") as server:
        assert server.base_url.startswith("http://127.0.0.2:")
        unpriced = settings(server, model="gpt-4.1", prices={})
        with pytest.raises(ConfigError) as err:
            interpret_model("m", features, records, client(unpriced, tmp_path / "cache"), 0, tmp_path / "m.jsonl")
        assert str(err.value).startswith("config key 'interp.prices.gpt-4.1' is missing") and "\n" not in str(err.value)
        assert server.requests == [] and not (tmp_path / "m.jsonl").exists()
        priced = settings(server, model="gpt-4.1", prices={"gpt-4.1": {"input": 2.0, "output": 8.0}})
        summary = interpret_model("m", features, records, client(priced, tmp_path / "cache"), 0, tmp_path / "m.jsonl")
        assert summary["requests_sent"] == len(server.requests) > 0 and summary["spent_usd"] > 0
    with ChatServer() as local:  # the same unpriced model on 127.0.0.1: free, and it runs
        unpriced_local = client(settings(local, model="gpt-4.1", prices={}), tmp_path / "c2")
        free = interpret_model("m", features, records, unpriced_local, 0, tmp_path / "free.jsonl")
        assert free["requests_sent"] == len(local.requests) > 0 and free["spent_usd"] == 0


@pytest.mark.parametrize("reply, expected", [
    ('{"activations": [0, 3, 10]}', [0, 3, 10]),
    ('```json\n{"activations": ["0", 4.6, 12]}\n```', [0, 5, 10]),
    ("Here you go: [1, 0, 2] as asked", [1, 0, 2]),
])
def test_simulation_replies_are_read_robustly(reply, expected):
    assert parse_simulation(reply, 3) == expected


@pytest.mark.parametrize("reply", ['{"activations": [1, 2]}', "no numbers here", '{"activations": [1, 2'])
def test_unreadable_simulations_raise_with_the_reason(reply):
    with pytest.raises(ValueError, match="no list of 3 integers"):
        parse_simulation(reply, 3)


def test_chain_features_follow_persisting_links_from_root_to_leaf():
    spec = {"edges": [{"source": "b", "target": "l", "kind": "finetune"}, {"source": "b", "target": "t", "kind": "finetune"},
                      {"source": "l", "target": "m", "kind": "merge"}, {"source": "t", "target": "m", "kind": "merge"}],
            "inputs": {"b": [], "l": ["b"], "t": ["b"], "m": ["l", "t"]}, "roots": ["b"]}
    rows = []
    links = {("b", "l"): {0: 5, 1: 6}, ("b", "t"): {2: 7}, ("l", "m"): {5: 9}, ("t", "m"): {8: 3}}
    for (src, tgt), pairs in links.items():
        for f in range(10):
            p = pairs.get(f)
            rows.append({"source": src, "target": tgt, "side": "source", "model": src, "feature": f, "active": True,
                         "partner": p if p is not None else 0, "class": "persisting" if p is not None else "disappearing"})
            rows.append({"source": src, "target": tgt, "side": "target", "model": tgt, "feature": f, "active": True,
                         "partner": 0, "class": "emerging"})
    chains = chain_features(pd.DataFrame(rows), spec)
    # b0 -> l5 -> m9 is a chain; b1 -> l6 stops (l6 does not persist); b2 -> t7 stops; t8 -> m3 is not reached from b
    assert chains == {"b": {0}, "l": {5}, "t": set(), "m": {9}}
    picked = select_features("b", chains["b"], np.ones(10, dtype=bool),
                             InterpFeatures(persisting_chain=True, random_others=3, max_per_model=3), seed=0)
    assert picked[0] == (0, "persisting") and len(picked) == 3 and all(g == "other" and f != 0 for f, g in picked[1:])


def test_micro_workflow_with_a_loopback_endpoint(micro_run, tmp_path, monkeypatch):
    """The autointerp rules on a copy of the micro run: jsonl, Figure 6, summary, explanations in the
    browser; a rerun pays nothing (cache); the key is nowhere on disk."""
    import shutil

    import yaml

    from helpers import REPO, dump_yaml, snakemake_local

    wd = tmp_path / "wd"
    shutil.copytree(micro_run[0], wd, symlinks=True)  # the session's run stays untouched
    monkeypatch.setenv("FF_TEST_KEY", SECRET)
    with ChatServer(faults=["429", "500"], malformed_every=5) as server:
        cfg = {"interp": {"enabled": True, "base_url": server.base_url, "model": "test-model", "api_key_env": "FF_TEST_KEY",
                          "backoff_s": 0.01, "timeout_s": 5, "budget_usd": 100.0, "prices": {"test-model": {"input": 1.0, "output": 2.0}},
                          "features": {"random_others": 2, "max_per_model": 4},
                          "records": {"explain_top": 3, "explain_random": 1, "simulate_top": 2, "simulate_random": 1}}}
        extra = dump_yaml(cfg, tmp_path / "interp.yaml")
        run = snakemake_local(wd, "--configfile", str(REPO / "config/micro.yaml"), str(extra))
        assert run.returncode == 0, run.stderr[-3000:]
        sent = len(server.requests)
        res = wd / "results/interp"
        models = ("babypython", "lua", "tinystories", "luastories")
        rows = [json.loads(line) for m in models for line in (res / f"{m}.jsonl").read_text().splitlines()]
        assert len(rows) == 16 and sent >= len(rows) + 2 and {r["group"] for r in rows} <= {"persisting", "other"}
        assert all(r["explanation"].startswith("the token ") for r in rows)
        summary = json.loads((res / "summary.json").read_text())
        assert summary["features"] == 16 and summary["cost_usd"] > 0 and summary["failures"] == sum(len(r["failures"]) for r in rows)
        assert (res / "fig6_scores.png").stat().st_size > 10_000
        estimate = json.loads((res / "estimate.json").read_text())
        assert estimate["total"]["features"] == 16 and estimate["total"]["usd_max"] >= summary["cost_usd"]
        assert "the token " in (wd / "results/browser/lua/data/index.js").read_text()
        for m in ("babypython", "lua"):  # lose two outputs: their rerun is answered from the cache
            (res / f"{m}.jsonl").unlink()
        again = snakemake_local(wd, "--configfile", str(REPO / "config/micro.yaml"), str(extra))
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(server.requests) == sent and "interp" in again.stderr
    cfg_text = yaml.safe_dump(cfg)
    assert "FF_TEST_KEY" in cfg_text and SECRET not in cfg_text
    for path in wd.rglob("*"):  # results, logs, cache, Snakemake's metadata
        if path.is_file() and not path.is_symlink() and path.stat().st_size < 50_000_000:
            assert SECRET.encode() not in path.read_bytes(), path


def test_the_estimate_rule_stops_an_unpriced_remote_run_before_any_request(micro_run, tmp_path, monkeypatch):
    """In the workflow: a remote endpoint (127.0.0.2) and a model without a price stop at the estimate, one line."""
    import shutil

    from helpers import REPO, dump_yaml, snakemake_local

    wd = tmp_path / "wd"
    shutil.copytree(micro_run[0], wd, symlinks=True)
    monkeypatch.setenv("FF_TEST_KEY", SECRET)
    with ChatServer(host="127.0.0.2") as server:
        cfg = {"interp": {"enabled": True, "base_url": server.base_url, "model": "gpt-4.1", "api_key_env": "FF_TEST_KEY",
                          "prices": {}, "features": {"random_others": 2, "max_per_model": 4}}}
        run = snakemake_local(wd, "--configfile", str(REPO / "config/micro.yaml"), str(dump_yaml(cfg, tmp_path / "remote.yaml")))
        assert run.returncode != 0 and server.requests == []
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("error: config key 'interp.prices.gpt-4.1'")]
    assert lines and "is not loopback" in lines[0], run.stderr[-3000:]
    assert not list((wd / "results/interp").glob("*.jsonl"))

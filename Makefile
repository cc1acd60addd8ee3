# Two commands do everything on a fresh machine:  `make run` (the demo) and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CORES  ?= 2

.PHONY: install run report docs test lint dry-run clean-results

# torch goes first and pinned: anything that pulls an unpinned torch gets a multi-GB CUDA build.
# mistral-common is installed without its dependencies: only its tokenizer file is used.
$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps mistral-common==1.13.1
	@# PNG figures (plotly/kaleido) need a Chromium; install Debian's when we can.
	command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "warning: no Chromium found; install it (apt-get install chromium) for PNG figures"
	touch $@

# The venv, and `snakemake --profile a100` by name: Snakemake looks profile names up in the
# current folder and ~/.config/snakemake/, not in profiles/.
install: $(STAMP)
	mkdir -p $(HOME)/.config/snakemake
	ln -sfn $(CURDIR)/profiles/a100 $(HOME)/.config/snakemake/a100
	@echo "installed: $(VENV)/, and the a100 profile as $(HOME)/.config/snakemake/a100"

# The demo, then Snakemake's report of it; results/index.html links everything.
run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)
	$(VENV)/bin/snakemake --cores $(CORES) --report results/report.html
	@echo "open results/index.html"

report: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) --report results/report.html

# The docs site's generated parts (reproduction table, config reference, figures in docs/) from the demo run;
# `$(VENV)/bin/mkdocs serve` shows the site while you edit it.
docs: $(STAMP)
	$(PY) scripts/update_docs.py
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

dry-run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES) -n

# Two pytest-xdist workers: the micro-workflow and SLURM tests in one, the paper-shaped run and the
# rest beside them (tests/conftest.py groups them); the ten slowest tests are listed at the end.
# Two workers each running 2-thread torch on 2 cores: OpenMP threads that spin while they wait take
# the cores from the other worker; passive waiting made two such processes side by side 2-3x faster
# (benchmarks/omp_wait.py). A run of the demo alone keeps the default (PASSIVE is 1.27x slower on its own).
test: lint
	OMP_WAIT_POLICY=PASSIVE $(VENV)/bin/pytest -q -n 2 --durations=10

# ruff (rules in pyproject.toml), Snakemake's own linter, and the docs site (mkdocs.yml): --strict fails on
# a broken link or anchor and on a page missing from the nav. The site goes to site/ (git-ignored).
# No --quiet: it hides the warnings from --strict too, and the build passes whatever they say.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/snakemake --lint --cores 1
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean-results:
	rm -rf results .snakemake

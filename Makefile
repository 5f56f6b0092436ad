# SRE Monitoring Lab: the two commands are `make lab` and `make test` (see README.md).
# Both build their own virtualenv (.venv) from a Python >= 3.12 that scripts/find-python.sh finds.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      ?= .venv
PY        := $(VENV)/bin/python
BIN       := $(VENV)/bin
# Extra arguments for ansible-playbook, e.g. make lab ARGS='-e lab_platform=local'
ARGS      ?=
# Extra arguments for the pytest run of make image-test, e.g. make image-test PYTEST_ARGS='-x -k drain'
PYTEST_ARGS ?=
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

# lab.txt installs the checkout's own packages (labapi, labtools) editable: their pyproject files count too.
LAB_REQS  := requirements/lab.txt app/pyproject.toml pyproject.toml
DEV_REQS  := requirements/dev.txt requirements/lab.txt requirements/local.txt app/requirements.txt loadtest/requirements.txt

.PHONY: help
help: ## List the targets, the drills and the faults
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@printf '\nDrills (group_vars/all/drills.yml, docs/drills.md): make drill DRILL=<name>, one of:\n '
	@awk '/^lab_drills:/ {on = 1; next} /^[^ #]/ {on = 0} on && /^  - name: / {printf " %s", $$3} END {print ""}' group_vars/all/drills.yml
	@printf '\nFaults at run time (roles/app_deploy/README.md): make faults FAULTS=<document>, e.g.\n'
	@printf "  make faults FAULTS='{\"db_failure_rate\": 0.5}'   half the simulated queries fail; with APP_DB_RETRIES=1 a\n"
	@printf '                                                request fails only when every try does: 0.5^2 = 25%% of 503s\n'
	@printf '  make faults FAULTS=none                       back to the baseline (lab_baseline_faults, group_vars/all/app.yml)\n'

$(VENV)/.lab-stamp: $(LAB_REQS)
	@test -x $(PY) || "$$(scripts/find-python.sh)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/lab.txt
	@touch $@

$(VENV)/.dev-stamp: $(VENV)/.lab-stamp $(DEV_REQS)
	$(PY) -m pip install --quiet -r requirements/dev.txt
	@touch $@

# checkov (security scan of the rendered manifests) pins packages that clash with the dev tools: own venv.
CHECKOV_VENV ?= .venv-checkov
$(CHECKOV_VENV)/.stamp: requirements/checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || "$$(scripts/find-python.sh)" -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements/checkov.txt
	@touch $@

.PHONY: venv dev-venv checkov-venv
venv: $(VENV)/.lab-stamp ## Create the lab virtualenv (ansible, kubernetes client)
dev-venv: $(VENV)/.dev-stamp ## Create the virtualenv with every test tool
checkov-venv: $(CHECKOV_VENV)/.stamp ## Create checkov's own virtualenv (security scan of the rendered manifests)

.PHONY: lab stress drill teardown render faults
lab: venv ## Bring the lab up (ansible-playbook playbooks/site.yml)
	$(BIN)/ansible-playbook playbooks/site.yml $(ARGS)

# The local platform runs Locust on this machine, from the lab's virtualenv.
$(VENV)/.stress-stamp: $(VENV)/.lab-stamp loadtest/requirements.txt
	$(PY) -m pip install --quiet -r loadtest/requirements.txt
	@touch $@

stress: $(VENV)/.stress-stamp ## Capacity search: raise the load until an SLO breaks, then the verdict and report.html (ARGS="-e stress_test_shape=steady" = gentle run)
	$(BIN)/ansible-playbook playbooks/stress.yml $(ARGS)

DRILL ?=
drill: $(VENV)/.stress-stamp ## Run an incident drill: make drill DRILL=db-outage (playbooks/drill.yml, docs/drills.md)
	$(BIN)/ansible-playbook playbooks/drill.yml -e 'drill=$(DRILL)' $(ARGS)

# Lessons (python -m lessons, lessons/catalog/): L = lesson id, Q = question number, A = the answer (passed through
# the environment, so any quoting in it is kept).
L ?=
Q ?=
A ?=
.PHONY: lesson answer lesson-end lesson-report
lesson: $(VENV)/.stress-stamp ## Lessons: make lesson lists them, make lesson L=<id> starts one (README "Learn with the lab")
	$(PY) -m lessons $(if $(L),start '$(L)' $(ARGS),list)

answer: export LESSON_L = $(L)
answer: export LESSON_Q = $(Q)
answer: export LESSON_A = $(A)
answer: venv ## Answer a question of the running lesson: make answer L=<id> Q=<n> A='<answer>'
	$(PY) -m lessons answer --lesson="$$LESSON_L" --question="$$LESSON_Q" --answer="$$LESSON_A"

lesson-end: venv ## End the running lesson now: baseline faults back, its load stopped
	$(PY) -m lessons end

lesson-report: venv ## Write the lessons' HTML report (what was done) and print its path
	$(PY) -m lessons report

# FAULTS: a fault document (JSON/YAML flow mapping), or none / baseline / unset = the baseline lab_baseline_faults.
FAULTS ?=
faults: venv ## Switch the running API's faults, no restart: make faults FAULTS='{"db_failure_rate": 0.5}'; FAULTS=none = baseline
	$(BIN)/ansible-playbook playbooks/faults.yml $(if $(filter-out none baseline,$(FAULTS)),-e '{"faults": $(FAULTS)}') $(ARGS)

teardown: venv ## Remove the lab (playbooks/teardown.yml)
	$(BIN)/ansible-playbook playbooks/teardown.yml $(ARGS)

render: venv ## Render every Kubernetes manifest and values file into build/rendered (no cluster needed)
	$(BIN)/ansible-playbook playbooks/render.yml $(ARGS)

.PHONY: system-deps
system-deps:
	scripts/system-deps.sh test

.PHONY: test lint pytest image-test molecule bench
# molecule test runs inside pytest (tests/e2e/test_molecule.py), beside the other modules rather than after them.
test: dev-venv system-deps lint pytest image-test ## Run every test: lint, pytest suites (molecule test among them), the image
	@echo "make test: all suites passed"

lint: dev-venv ## ruff, mypy (strict), yamllint, ansible-lint (production profile), hadolint, syntax-check of every playbook
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --offline --profile production
	$(BIN)/hadolint app/Dockerfile
	@for pb in playbooks/*.yml; do $(BIN)/ansible-playbook --syntax-check "$$pb" >/dev/null || exit 1; echo "syntax ok: $$pb"; done

# pytest runs on three pytest-xdist workers, whole modules each, the real local labs first (tests/support/xdist_groups.py):
# three on two cores, because the three long modules (real local labs) spend most of their time waiting on alerts.
# PYTEST_XDIST= (empty) runs it serially in one process.
PYTEST_XDIST ?= -n 3 --dist loadfile --no-loadscope-reorder
pytest: dev-venv system-deps checkov-venv ## Unit, integration and static-validation tests (pytest, three workers)
	$(BIN)/pytest $(PYTEST_XDIST)

# Needs root the first time (installs docker.io/debootstrap, starts the lab's own dockerd); see scripts/image-test.sh.
image-test: dev-venv ## Build app/Dockerfile for real and test its container as the Deployment runs it (tests/image)
	scripts/image-test.sh $(PYTEST_ARGS)

molecule: dev-venv system-deps ## molecule test: the local platform end to end
	$(BIN)/molecule test

bench: dev-venv system-deps ## Benchmarks (not tests): print throughput/latency figures
	$(PY) -m app.bench
	$(PY) -m loadtest.bench

.PHONY: clean
clean: ## Remove the virtualenv and build outputs
	rm -rf $(VENV) $(CHECKOV_VENV) build .pytest_cache .ruff_cache .mypy_cache

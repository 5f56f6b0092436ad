"""Sum the requests and limits of every container the lab runs on Kubernetes, from the rendered files.

Input: the folder `playbooks/render.yml` writes (default build/rendered; run `make render` first) and the pinned
charts' default values (files/chart-defaults/). For each Helm release the rendered values are merged over the chart's
defaults the way Helm merges them, then every container that release creates is listed with the values key its
resources come from (sidecars and init containers included; Alertmanager from the prometheus chart's alertmanager
subchart, with that subchart's defaults). Components the model does not know (Loki caches, Grafana sidecars with no
resources, extra containers, ...) are an error, not a silent zero. The API's (with Alertmanager's webhook receiver, in
the API's namespace) and the stress Job's containers come from their rendered manifests.

The Minikube fit compares the sums, plus the requests of the pods Minikube itself runs (kubeadm's control plane,
CoreDNS, metrics-server: `budget.SYSTEM_PODS`), with the node size in group_vars/all/resources.yml.

Modules, each with one job (each imports only the ones above it):
- `paths`: the repository root and the chart defaults folder;
- `errors`: BudgetError;
- `quantities`: Kubernetes CPU and memory quantities;
- `containers`: the Container record and a container's requests/limits;
- `helm_values`: Helm's merge of values over chart defaults, dotted look-ups, the pinned charts' defaults;
- `charts`: the four chart models (prometheus with its alertmanager subchart, loki, alloy, grafana);
- `manifests`: containers of rendered Kubernetes manifests;
- `budget`: the sums per pod, the Minikube system pods, the targets and the fit checks;
- `text`: the plain-text report and the README's Markdown table;
- `cli`: `python -m scripts.resource_budget [--rendered build/rendered] [--json | --markdown] [--check]`.
"""

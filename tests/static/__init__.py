"""Static validation of the Kubernetes path: rendered manifests and Helm values, security scan, preflight."""

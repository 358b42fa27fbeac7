"""The local multi-node Kubernetes cluster, built from source (`make cluster-up`)."""

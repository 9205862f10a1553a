"""The private registry: its HTTP API, deployment (registry:2 + nginx), PKI and credentials."""

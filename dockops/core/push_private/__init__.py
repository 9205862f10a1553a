"""push-private: a local image into the private registry, through the daemon or directly."""

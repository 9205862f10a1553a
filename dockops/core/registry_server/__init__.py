"""Running the private registry: registry:2 up and down, the TLS frontend (CA, nginx,
htpasswd), garbage collection and status."""

"""Optional extra (`backpack[ray]`): similarity builds and all-user batches on a Ray cluster, Ray Serve replicas."""

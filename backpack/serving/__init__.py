"""The socket protocol, the server (reads, group-committed writes, snapshots, event loop) and the clients."""

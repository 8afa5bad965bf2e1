"""A real three-node (or N-node) local KRaft cluster: each node broker+controller, one shared cluster id.

Why a cluster locally: the production topic profile (replication factor 3, ``min.insync.replicas`` 2) can only be
exercised, and a broker's loss only proven harmless, with three brokers. ``civreg dev up --brokers 3`` and the fault
suite (``deploy.local.faults``) drive this class; the single-node ``deploy.local.kafka.LocalKafka`` stays the default.

Each node is a ``LocalKafka`` with its own directory (``<home>/kafka-cluster/node-<id>``), ports and ``node.id``;
the controller quorum is static (``controller.quorum.voters``) and every node is formatted with the same cluster id,
so the nodes form one cluster without a bootstrap step. ``cluster.json`` records the layout, so ``dev down`` and
``dev status`` find the nodes again.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from confluent_kafka.admin import AdminClient

from civreg.settings import Settings
from deploy.local.jvm import pid_alive, port_in_use
from deploy.local.kafka import KafkaStatus, LocalKafka, LocalKafkaError, _new_cluster_id, kraft_properties

__all__ = ["CLUSTER_DIR", "KafkaNode", "LocalKafkaCluster", "NodePorts"]

CLUSTER_DIR = "kafka-cluster"
_LAYOUT = "cluster.json"


@dataclass(frozen=True)
class NodePorts:
    """One node's client (PLAINTEXT) and controller ports on 127.0.0.1."""

    node_id: int
    port: int
    controller_port: int


class KafkaNode(LocalKafka):
    """One node of a local cluster: a ``LocalKafka`` with its own directory, ports, node id and the shared quorum."""

    def __init__(self, settings: Settings, ports: NodePorts, voters: list[NodePorts], cluster_id: str) -> None:
        node_settings = settings.model_copy(
            update={"local_port": ports.port, "local_controller_port": ports.controller_port}
        )
        super().__init__(node_settings)
        self.ports = ports
        self.voters = voters
        self.cluster_id = cluster_id
        self.base_dir = settings.home.resolve() / CLUSTER_DIR / f"node-{ports.node_id}"
        self.data_dir = self.base_dir / "data"
        self.config_path = self.base_dir / "server.properties"
        self.log_path = self.base_dir / "broker.log"
        self.pid_path = self.base_dir / "kafka.pid"
        self._jvm.pid_path = self.pid_path
        self._jvm.log_path = self.log_path
        self._jvm.markers = ("kafka.Kafka", str(self.config_path))

    def server_properties(self) -> str:
        """Broker+controller in a quorum of ``voters``; replication factor 3 and min ISR 2 for internal topics."""
        nodes = len(self.voters)
        replicas = min(3, nodes)
        min_isr = min(2, replicas)
        voters = ",".join(f"{v.node_id}@127.0.0.1:{v.controller_port}" for v in self.voters)
        port, cport = self.ports.port, self.ports.controller_port
        lines = [
            *kraft_properties(
                written_by="deploy/local/cluster.py",
                node_id=self.ports.node_id,
                voters=voters,
                port=port,
                controller_port=cport,
                data_dir=self.data_dir,
                replicas=replicas,
                min_isr=min_isr,
            ),
            # A restarted node rejoins the ISR quickly, and a killed one leaves it quickly: failover in seconds.
            "replica.lag.time.max.ms=10000",
            "broker.session.timeout.ms=9000",
            "broker.heartbeat.interval.ms=2000",
            "",
        ]
        return "\n".join(lines)

    def _cluster_id_to_format(self) -> str:
        """The cluster's shared id (never a random one: the nodes must agree)."""
        return self.cluster_id

    def _security_format_arguments(self) -> list[str]:
        """None: the cluster's nodes are not secured (their ``server_properties`` has no SCRAM listener)."""
        return []

    def prepare(self, java: str) -> None:
        """Write the config and format the log dir (idempotent)."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.server_properties(), encoding="utf-8")
        self._format_storage(java)

    def launch(self, java: str) -> subprocess.Popen[bytes]:
        """Start the JVM without waiting: a quorum node cannot answer until a majority of the voters runs."""
        for port in (self.ports.port, self.ports.controller_port):
            if port_in_use(port):
                raise LocalKafkaError(f"port {port} on 127.0.0.1 is already in use by another program")
        self.prepare(java)
        command = [*self._java_base(java, ["-Xmx512m", "-Xms256m"]), "kafka.Kafka", str(self.config_path)]
        return self._jvm.launch(command, cwd=self.base_dir)

    def answers(self, timeout: float = 1.0) -> bool:
        """True when this node's admin API answers with metadata."""
        admin = AdminClient(self._local_admin_config([]))
        try:
            admin.list_topics(timeout=timeout)
        except Exception:  # KafkaException: not answering
            return False
        return True

    def kill(self) -> bool:
        """SIGKILL, as a crashed machine would: no clean shutdown, no leadership hand-over. True if it ran."""
        pid = self._jvm.running_pid(search=True)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if self._jvm.proc is not None and self._jvm.proc.pid == pid:
            self._jvm.proc.wait(timeout=30)
        else:
            deadline = time.monotonic() + 30
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        self._jvm.forget_pid()
        return True


class LocalKafkaCluster:
    """N local nodes (default three) under ``<home>/kafka-cluster``; node 1 listens on ``settings.local_port``."""

    def __init__(self, settings: Settings, nodes: int = 3, ports: list[NodePorts] | None = None) -> None:
        self.settings = settings
        self.base_dir = settings.home.resolve() / CLUSTER_DIR
        layout = self._read_layout()
        if ports is None and layout is not None:
            ports = [NodePorts(**entry) for entry in layout["nodes"]]
        if ports is None:
            # Default ports: node i at local_port + 2(i-1) and local_controller_port + 2(i-1) (9092/9093, 9094/9095, ..)
            ports = [
                NodePorts(i, settings.local_port + 2 * (i - 1), settings.local_controller_port + 2 * (i - 1))
                for i in range(1, nodes + 1)
            ]
        self.ports = ports
        self.cluster_id: str = layout["cluster_id"] if layout is not None else _new_cluster_id()
        self.nodes = [KafkaNode(settings, p, ports, self.cluster_id) for p in ports]

    @classmethod
    def existing(cls, settings: Settings) -> LocalKafkaCluster | None:
        """The cluster ``dev up --brokers N`` created under ``settings.home``, if there is one."""
        if not (settings.home.resolve() / CLUSTER_DIR / _LAYOUT).is_file():
            return None
        return cls(settings)

    @property
    def bootstrap(self) -> str:
        """Every node's address: clients reach the cluster while any one of them runs."""
        return ",".join(f"127.0.0.1:{p.port}" for p in self.ports)

    def node(self, node_id: int) -> KafkaNode:
        """The node with ``node.id`` ``node_id``."""
        for node in self.nodes:
            if node.ports.node_id == node_id:
                return node
        raise KeyError(f"no node {node_id}; nodes are {[n.ports.node_id for n in self.nodes]}")

    def start(self, timeout: float = 120.0) -> list[KafkaStatus]:
        """Start every node that is not running, then wait until each answers and all are registered."""
        first = self.nodes[0]
        first.ensure_jars()
        java = first.java_executable()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._write_layout()
        launched: dict[int, subprocess.Popen[bytes]] = {}
        for node in self.nodes:
            if not node.status().running:
                launched[node.ports.node_id] = node.launch(java)
        deadline = time.monotonic() + timeout
        while True:
            for node_id, proc in launched.items():
                if proc.poll() is not None:
                    node = self.node(node_id)
                    node._jvm.forget_pid()
                    raise LocalKafkaError(
                        f"Kafka node {node_id} exited with code {proc.returncode} while starting; end of "
                        f"{node.log_path}:\n{node.log_tail()}"
                    )
            if self.registered_brokers() >= len(self.nodes):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise LocalKafkaError(
                    f"the {len(self.nodes)}-node cluster did not form within {timeout:.0f}s; end of "
                    f"{first.log_path}:\n{first.log_tail()}"
                )
            time.sleep(0.5)
        return self.status()

    def registered_brokers(self, timeout: float = 2.0) -> int:
        """How many brokers the cluster's metadata lists (0 when no node answers)."""
        errors: list[str] = []
        config = self.nodes[0]._local_admin_config(errors)  # the runner's client id and quiet error handling
        config["bootstrap.servers"] = self.bootstrap
        admin = AdminClient(config)
        try:
            return len(admin.list_topics(timeout=timeout).brokers)
        except Exception:  # KafkaException: no node answers yet
            return 0

    def kill(self, node_id: int) -> bool:
        """SIGKILL one node (for fault tests); True if it was running."""
        return self.node(node_id).kill()

    def restart(self, node_id: int, timeout: float = 90.0) -> KafkaStatus:
        """Start one stopped node again and wait until it answers (the others keep the quorum meanwhile)."""
        return self.node(node_id).start(timeout=timeout)

    def stop(self, timeout: float = 30.0) -> int:
        """Stop every node cleanly at once (SIGKILL after ``timeout``); how many were running.

        All at once: the last node stopped alone would wait for a quorum that is gone before shutting down.
        """
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            return sum(pool.map(lambda node: node.stop(timeout), self.nodes))

    def status(self) -> list[KafkaStatus]:
        """Each node's process status, in node order."""
        return [node.status() for node in self.nodes]

    def _read_layout(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.base_dir / _LAYOUT).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return data

    def _write_layout(self) -> None:
        layout = {
            "cluster_id": self.cluster_id,
            "nodes": [{"node_id": p.node_id, "port": p.port, "controller_port": p.controller_port} for p in self.ports],
        }
        (self.base_dir / _LAYOUT).write_text(json.dumps(layout, indent=2) + "\n", encoding="utf-8")

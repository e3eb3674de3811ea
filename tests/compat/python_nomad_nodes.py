"""Drives Caravan's Nodes API with python-nomad, an unmodified Nomad client library.

Usage: python python_nomad_nodes.py HOST PORT
Exits non-zero, with the failing step, if any call fails or answers differently than Nomad.
"""

import sys
import time

import nomad
import nomad.api.exceptions as exc


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    n = nomad.Nomad(host=host, port=port, timeout=10)

    nodes = n.nodes.get_nodes()
    assert len(nodes) == 1, nodes
    stub = nodes[0]
    assert stub["Status"] == "ready", stub
    assert stub["SchedulingEligibility"] == "eligible", stub
    node_id = stub["ID"]

    with_resources = n.nodes.get_nodes(resources=True)
    assert with_resources[0]["NodeResources"]["Memory"]["MemoryMB"] > 0, with_resources
    assert n.nodes.get_nodes(prefix=node_id[:4])[0]["ID"] == node_id
    assert node_id in n.nodes
    assert len(n.nodes) == 1

    node = n.node.get_node(node_id)
    assert node["ID"] == node_id and node["SecretID"] == "", node
    assert node["Attributes"]["kernel.name"] == "linux", node["Attributes"]
    assert node["Events"][0]["Message"] == "Node registered", node["Events"]
    assert n.node[node_id]["Name"] == node["Name"]
    assert "00000000-0000-0000-0000-000000000000" not in n.node
    assert n.node.get_allocations(node_id) == []

    resp = n.node.eligible_node(node_id, ineligible=True)
    assert resp["Index"] > 0 and resp["EvalIDs"] is None, resp
    assert n.node.get_node(node_id)["SchedulingEligibility"] == "ineligible"
    n.node.eligible_node(node_id, eligible=True)
    assert n.node.get_node(node_id)["SchedulingEligibility"] == "eligible"

    evaluated = n.node.evaluate_node(node_id)
    assert evaluated["EvalIDs"] is None and evaluated["EvalCreateIndex"] == 0, evaluated

    # A drain of an empty node completes at once, so give the node an allocation to move
    # (it stays pending: nothing on the node reports it stopped).
    job = {
        "ID": "drain-compat",
        "Datacenters": ["*"],
        "TaskGroups": [{
            "Name": "g",
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["600"]},
                "Resources": {"CPU": 20, "MemoryMB": 16},
            }],
        }],
    }
    n.jobs.register_job({"Job": job})
    deadline = time.monotonic() + 20
    while not n.node.get_allocations(node_id):
        assert time.monotonic() < deadline, "the job was never placed on the node"
        time.sleep(0.05)

    hour = 3_600_000_000_000
    n.node.drain_node_with_spec(node_id, drain_spec={"Deadline": hour, "IgnoreSystemJobs": True})
    drained = n.node.get_node(node_id)
    assert drained["Drain"] is True, drained
    assert drained["DrainStrategy"]["Deadline"] == hour, drained["DrainStrategy"]
    try:
        n.node.eligible_node(node_id, eligible=True)
        raise AssertionError("eligible while draining was accepted")
    except exc.BaseNomadException as e:
        assert "draining" in e.nomad_resp.text, e.nomad_resp.text
    n.node.drain_node_with_spec(node_id, drain_spec=None, mark_eligible=True)
    undrained = n.node.get_node(node_id)
    assert undrained["DrainStrategy"] is None and undrained["SchedulingEligibility"] == "eligible"
    n.job.deregister_job("drain-compat", purge=True)

    try:
        n.node.get_node("00000000-0000-0000-0000-000000000000")
        raise AssertionError("an unknown node was found")
    except exc.URLNotFoundNomadException:
        pass

    agent = n.agent.get_agent()
    # A gateway in front of remote servers runs no client; `agent -dev` runs this node's.
    if agent["config"]["Client"]["Enabled"]:
        assert agent["stats"]["client"]["node_id"] == node_id, agent["stats"]
    members = n.agent.get_members()
    assert len(members["Members"]) == 1, members
    assert n.regions.get_regions() == ["global"]
    assert ":" in n.status.leader.get_leader()
    assert len(n.status.peers.get_peers()) == 1

    print("python-nomad: every Nodes API call answered as Nomad does")


if __name__ == "__main__":
    main()

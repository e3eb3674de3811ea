"""Drives Caravan's Search API (prefix and fuzzy) with python-nomad, unmodified.

Usage: python python_nomad_search.py HOST PORT
Exits non-zero, with the failing step, if any call fails or answers differently than Nomad.
"""

import sys

import nomad
import nomad.api.exceptions as exc


def job(job_id):
    # A constraint no node meets: the job is never placed, its evaluation stays blocked.
    return {
        "ID": job_id,
        "Constraints": [{"LTarget": "${attr.kernel.name}", "RTarget": "no-such-kernel", "Operand": "="}],
        "TaskGroups": [{
            "Name": "cache",
            "Tasks": [{
                "Name": "redis",
                "Driver": "raw_exec",
                "Config": {"command": "/usr/bin/redis-server"},
            }],
        }],
    }


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    n = nomad.Nomad(host=host, port=port, timeout=10)

    registered = n.jobs.register_job({"Job": job("py-search")})
    eval_id = registered["EvalID"]
    node_id = n.nodes.get_nodes()[0]["ID"]

    found = n.search.search("py-", "jobs")
    assert found["Matches"] == {"jobs": ["py-search"]}, found
    assert found["Truncations"] == {"jobs": False}, found
    assert found["Index"] > 0 and found["KnownLeader"] is True, found

    found = n.search.search(eval_id[:8], "evals")
    assert found["Matches"]["evals"] == [eval_id], found
    found = n.search.search(node_id[:5], "nodes")  # odd: rounded down, then matched
    assert found["Matches"]["nodes"] == [node_id], found

    everything = n.search.search("py", "all")
    assert everything["Matches"]["jobs"] == ["py-search"], everything
    # "py" is no UUID prefix: the UUID contexts are left out, as in Nomad.
    assert "evals" not in everything["Matches"] and "allocs" not in everything["Matches"], everything
    assert everything["Matches"]["volumes"] is None, everything

    fuzzy = n.search.fuzzy_search("REDIS", "jobs")
    assert fuzzy["Matches"]["tasks"] == [{"ID": "redis", "Scope": ["default", "py-search", "cache"]}], fuzzy
    assert fuzzy["Matches"]["commands"] == [
        {"ID": "/usr/bin/redis-server", "Scope": ["default", "py-search", "cache", "redis"]}
    ], fuzzy
    assert fuzzy["Truncations"] == {"jobs": False}, fuzzy

    fuzzy = n.search.fuzzy_search("py-s", "all")
    assert fuzzy["Matches"]["jobs"] == [{"ID": "py-search", "Scope": ["default", "py-search"]}], fuzzy
    assert fuzzy["Matches"]["evals"] == [], fuzzy

    try:
        n.search.fuzzy_search("p", "all")
        raise AssertionError("a one-character fuzzy search was answered")
    except exc.BadRequestNomadException as e:
        assert "at least 2 characters" in e.nomad_resp.text, e.nomad_resp.text

    print("python-nomad: every Search call answered as Nomad does")


if __name__ == "__main__":
    main()

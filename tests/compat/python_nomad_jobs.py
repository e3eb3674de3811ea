"""Drives Caravan's Jobs, Evaluations and Allocations APIs with python-nomad, unmodified.

Usage: python python_nomad_jobs.py HOST PORT
Exits non-zero, with the failing step, if any call fails or answers differently than Nomad.
"""

import sys
import time

import nomad
import nomad.api.exceptions as exc

JOBSPEC = """
job "compat" {
  datacenters = ["*"]
  type        = "service"

  group "web" {
    count = 1

    network {
      port "http" {}
    }

    task "server" {
      driver = "raw_exec"

      config {
        command = "/bin/sleep"
        args    = ["600"]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"""


def wait_for(what, probe, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    n = nomad.Nomad(host=host, port=port, timeout=10)

    job = n.jobs.parse(JOBSPEC, canonicalize=True)
    assert job["ID"] == "compat" and job["Priority"] == 50, job
    assert job["TaskGroups"][0]["Tasks"][0]["Resources"]["CPU"] == 50, job

    registered = n.jobs.register_job({"Job": job})
    assert len(registered["EvalID"]) == 36 and registered["JobModifyIndex"] > 0, registered
    assert "compat" in n.jobs and len(n.jobs) == 1
    stub = n.jobs.get_jobs()[0]
    assert stub["ID"] == "compat" and stub["Type"] == "service", stub
    assert n.jobs.get_jobs(prefix="comp")[0]["ID"] == "compat"

    read = n.job.get_job("compat")
    assert read["Version"] == 0 and read["Region"] == "global", read
    assert "compat" in n.job and "missing" not in n.job
    versions = n.job.get_versions("compat")
    assert [v["Version"] for v in versions["Versions"]] == [0], versions

    # An update through the other endpoint makes version 1.
    job["TaskGroups"][0]["Tasks"][0]["Config"]["args"] = ["700"]
    n.job.register_job("compat", {"Job": job})
    assert n.job.get_job("compat")["Version"] == 1

    allocs = wait_for(
        "an allocation of version 1",
        lambda: [
            a for a in n.job.get_allocations("compat")
            if a["JobVersion"] == 1 and a["DesiredStatus"] == "run"
        ],
    )
    alloc = n.allocation.get_allocation(allocs[0]["ID"])
    assert alloc["Job"]["ID"] == "compat" and alloc["TaskGroup"] == "web", alloc
    ports = alloc["AllocatedResources"]["Shared"]["Ports"]
    assert ports and 20000 <= ports[0]["Value"] <= 32000, ports
    assert any(a["ID"] == alloc["ID"] for a in n.allocations.get_allocations())

    summary = n.job.get_summary("compat")
    assert summary["JobID"] == "compat" and "web" in summary["Summary"], summary
    evals = n.job.get_evaluations("compat")
    assert evals and all(e["JobID"] == "compat" for e in evals), evals
    assert n.evaluation.get_evaluation(evals[0]["ID"])["ID"] == evals[0]["ID"]

    stopped = n.allocation.stop_allocation(alloc["ID"])
    assert len(stopped["EvalID"]) == 36 and stopped["Index"] > 0, stopped
    wait_for(
        "a replacement",
        lambda: [a for a in n.job.get_allocations("compat") if a["ID"] != alloc["ID"] and a["DesiredStatus"] == "run"],
    )

    evaluated = n.job.evaluate_job("compat")
    assert len(evaluated["EvalID"]) == 36, evaluated

    valid = n.validate.validate_job({"Job": job}).json()
    assert valid["ValidationErrors"] is None and valid["Error"] == "", valid
    broken = dict(job, TaskGroups=[])
    try:
        n.validate.validate_job({"Job": broken}).json()
    except exc.BaseNomadException:
        pass

    try:
        n.job.get_job("missing")
        raise AssertionError("an unknown job was found")
    except exc.URLNotFoundNomadException:
        pass

    deregistered = n.job.deregister_job("compat")
    assert len(deregistered["EvalID"]) == 36, deregistered
    assert n.job.get_job("compat")["Stop"] is True
    n.job.deregister_job("compat", purge=True)
    assert "compat" not in n.jobs

    print("python-nomad: every Jobs/Evaluations/Allocations call answered as Nomad does")


if __name__ == "__main__":
    main()

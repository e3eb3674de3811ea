"""The python-nomad flow of a user whose tasks really run: register a job, wait until its task
is `running`, signal it, restart it, stop the allocation, see the replacement run, and garbage
collect the stopped allocation on its node.

Usage: python python_nomad_tasks.py HOST PORT
Exits non-zero, with the failing step, if any call fails or answers differently than Nomad.
"""

import sys
import time

import nomad
import nomad.api.exceptions as exc

JOBSPEC = """
job "tasks" {
  datacenters = ["*"]
  type        = "service"

  group "web" {
    restart {
      attempts = 0
      mode     = "fail"
    }

    task "server" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "trap 'echo urg >> $NOMAD_ALLOC_DIR/signals' URG; while :; do sleep 0.1; done"]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"""


def wait_for(what, probe, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def running(n, job, exclude=()):
    return [
        a for a in n.job.get_allocations(job)
        if a["ClientStatus"] == "running" and a["ID"] not in exclude
    ]


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    n = nomad.Nomad(host=host, port=port, timeout=30)

    job = n.jobs.parse(JOBSPEC, canonicalize=True)
    n.jobs.register_job({"Job": job})
    alloc = wait_for("the task to run", lambda: running(n, "tasks"))[0]
    state = alloc["TaskStates"]["server"]
    assert state["State"] == "running" and state["StartedAt"], state
    assert [e["Type"] for e in state["Events"]] == ["Received", "Task Setup", "Started"], state

    # SIGURG: harmless even if it arrives before the shell set its trap.
    assert n.client.allocation.signal_allocation(alloc["ID"], "SIGURG") == {"Index": 0}
    assert n.client.allocation.signal_allocation(alloc["ID"], "SIGURG", task="server") == {"Index": 0}
    try:
        n.client.allocation.signal_allocation(alloc["ID"], "SIGUSR1", task="nope")
        raise AssertionError("a signal to an unknown task was accepted")
    except exc.URLNotFoundNomadException:
        pass
    try:
        n.client.allocation.signal_allocation(alloc["ID"], "SIGWHAT")
        raise AssertionError("an invalid signal was accepted")
    except exc.BadRequestNomadException:
        pass
    signaled = wait_for(
        "the Signaling events",
        lambda: [
            e for e in n.allocation.get_allocation(alloc["ID"])["TaskStates"]["server"]["Events"]
            if e["Type"] == "Signaling"
        ],
    )
    assert signaled[0]["TaskSignal"] == "SIGURG", signaled

    assert n.client.allocation.restart_allocation(alloc["ID"]) == {"Index": 0}
    wait_for(
        "the task to run again after the restart",
        lambda: n.allocation.get_allocation(alloc["ID"])["TaskStates"]["server"]["Restarts"] == 1
        and n.allocation.get_allocation(alloc["ID"])["ClientStatus"] == "running",
    )

    n.allocation.stop_allocation(alloc["ID"])
    replacement = wait_for("the replacement to run", lambda: running(n, "tasks", exclude=(alloc["ID"],)))[0]
    replacement = n.allocation.get_allocation(replacement["ID"])
    assert replacement["PreviousAllocation"] == alloc["ID"], replacement
    stopped = wait_for(
        "the stopped allocation to complete",
        lambda: n.allocation.get_allocation(alloc["ID"])["ClientStatus"] == "complete"
        and n.allocation.get_allocation(alloc["ID"]),
    )
    assert [e["Type"] for e in stopped["TaskStates"]["server"]["Events"]][-1] == "Killed", stopped

    n.client.gc_allocation.garbage_collect(alloc["ID"])
    n.client.gc_all_allocations.garbage_collect(replacement["NodeID"])

    n.job.deregister_job("tasks")
    wait_for("every allocation to stop", lambda: not running(n, "tasks"))
    print("python-nomad: register, run, signal, restart, stop and replace answered as Nomad does")


if __name__ == "__main__":
    main()

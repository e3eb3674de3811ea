"""Drives Caravan's job workflow with python-nomad, unmodified: dispatch of a parameterized job
(with its idempotency token), revert, stable, plan, and purge-then-register.

Usage: python python_nomad_workflow.py HOST PORT
Exits non-zero, with the failing step, if any call fails or answers differently than Nomad.
"""

import base64
import sys
import time

import nomad
import nomad.api.exceptions as exc


def wait_for(what, probe, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def service_job(job_id, args):
    return {
        "Job": {
            "ID": job_id,
            "Type": "service",
            "TaskGroups": [
                {
                    "Name": "web",
                    "Tasks": [
                        {
                            "Name": "server",
                            "Driver": "raw_exec",
                            "Config": {"command": "/bin/sleep", "args": args},
                            "Resources": {"CPU": 20, "MemoryMB": 16},
                        }
                    ],
                }
            ],
        }
    }


def check_dispatch(n):
    n.jobs.register_job(
        {
            "Job": {
                "ID": "compat-param",
                "Type": "batch",
                "ParameterizedJob": {"Payload": "optional", "MetaRequired": ["time"]},
                "TaskGroups": [
                    {
                        "Name": "g",
                        "Tasks": [
                            {
                                "Name": "t",
                                "Driver": "raw_exec",
                                "DispatchPayload": {"File": "input.txt"},
                                "Config": {"command": "/bin/cat", "args": ["local/input.txt"]},
                                "Resources": {"CPU": 20, "MemoryMB": 16},
                            }
                        ],
                    }
                ],
            }
        }
    )
    payload = base64.b64encode(b"hello").decode()
    first = n.job.dispatch_job(
        "compat-param", payload=payload, meta={"time": "5"}, idempotency_token="tok-1"
    )
    child = first["DispatchedJobID"]
    assert child.startswith("compat-param/dispatch-"), first
    assert first["EvalID"], first
    again = n.job.dispatch_job(
        "compat-param", payload=payload, meta={"time": "5"}, idempotency_token="tok-1"
    )
    assert again["DispatchedJobID"] == child, (first, again)
    other = n.job.dispatch_job("compat-param", meta={"time": "6"})
    assert other["DispatchedJobID"] != child, other
    try:
        n.job.dispatch_job("compat-param", meta={"nope": "1"})
        raise AssertionError("dispatch with meta it does not allow was accepted")
    except exc.BaseNomadException as e:
        assert "unpermitted metadata keys: [nope]" in e.nomad_resp.text, e.nomad_resp.text
    try:
        n.job.dispatch_job("compat-param", meta={})
        raise AssertionError("dispatch without the required meta was accepted")
    except exc.BaseNomadException as e:
        assert "required meta keys: [time]" in e.nomad_resp.text, e.nomad_resp.text
    children = [j for j in n.jobs.get_jobs(prefix="compat-param/") if j["ParentID"] == "compat-param"]
    assert len(children) == 2, children
    summary = n.job.get_summary("compat-param")
    wait_for(
        "two children counted",
        lambda: sum(n.job.get_summary("compat-param")["Children"].values()) == 2,
    )
    assert summary["Children"] is not None, summary
    # python-nomad puts the child's ID in the path unescaped (".../compat-param/dispatch-...").
    doc = n.job.get_job(child)
    assert doc["ID"] == child and doc["ParentID"] == "compat-param", doc
    wait_for(
        "the child's allocation to complete",
        lambda: [a["ClientStatus"] for a in n.job.get_allocations(child)] == ["complete"],
    )
    assert n.job.get_summary(child)["Summary"]["g"]["Complete"] == 1
    assert n.job.get_versions(child)["Versions"][0]["ID"] == child


def check_revert_and_stable(n):
    n.jobs.register_job(service_job("compat-revert", ["600"]))
    n.jobs.register_job(service_job("compat-revert", ["601"]))
    job = n.job.get_job("compat-revert")
    assert job["Version"] == 1, job["Version"]
    try:
        n.job.revert_job("compat-revert", 1)
        raise AssertionError("revert to the current version was accepted")
    except exc.BaseNomadException as e:
        assert "current version" in e.nomad_resp.text, e.nomad_resp.text
    try:
        n.job.revert_job("compat-revert", 0, enforce_prior_version=7)
        raise AssertionError("revert with a wrong prior version was accepted")
    except exc.BaseNomadException as e:
        assert "enforcing version 7" in e.nomad_resp.text, e.nomad_resp.text
    out = n.job.revert_job("compat-revert", 0, enforce_prior_version=1)
    assert out["EvalID"], out
    job = n.job.get_job("compat-revert")
    assert job["Version"] == 2, job["Version"]
    assert job["TaskGroups"][0]["Tasks"][0]["Config"]["args"] == ["600"], job

    stable = n.job.stable_job("compat-revert", 2, True)
    assert stable["Index"] > 0, stable
    assert n.job.get_job("compat-revert")["Stable"] is True
    versions = n.job.get_versions("compat-revert")["Versions"]
    assert [v["Stable"] for v in versions if v["Version"] == 2] == [True], versions
    n.job.stable_job("compat-revert", 2, False)
    assert n.job.get_job("compat-revert")["Stable"] is False


def check_plan(n):
    job = service_job("compat-plan", ["600"])
    plan = n.job.plan_job("compat-plan", job, diff=True)
    assert plan["Annotations"]["DesiredTGUpdates"]["web"]["Place"] == 1, plan
    assert plan["Diff"]["Type"] == "Added", plan["Diff"]
    assert plan["JobModifyIndex"] == 0, plan
    try:
        n.job.get_job("compat-plan")
        raise AssertionError("planning registered the job")
    except exc.URLNotFoundNomadException:
        pass
    n.jobs.register_job(job)
    wait_for(
        "compat-plan running",
        lambda: any(a["ClientStatus"] == "running" for a in n.job.get_allocations("compat-plan")),
    )
    changed = service_job("compat-plan", ["601"])
    plan = n.job.plan_job("compat-plan", changed, diff=True)
    assert plan["Annotations"]["DesiredTGUpdates"]["web"]["DestructiveUpdate"] == 1, plan
    assert plan["Diff"]["TaskGroups"][0]["Tasks"][0]["Annotations"] == [
        "forces create/destroy update"
    ], plan["Diff"]
    assert plan["JobModifyIndex"] == n.job.get_job("compat-plan")["JobModifyIndex"], plan
    n.job.deregister_job("compat-plan", purge=True)


def check_purge_then_register(n):
    n.jobs.register_job(service_job("compat-purge", ["600"]))
    wait_for("compat-purge placed", lambda: n.job.get_allocations("compat-purge"))
    n.job.deregister_job("compat-purge", purge=True)
    wait_for(
        "compat-purge gone",
        lambda: not any(j["ID"] == "compat-purge" for j in n.jobs.get_jobs(prefix="compat-purge")),
    )
    n.jobs.register_job(service_job("compat-purge", ["602"]))
    job = n.job.get_job("compat-purge")
    assert job["Version"] == 0, job["Version"]
    wait_for(
        "the new compat-purge running",
        lambda: any(
            a["ClientStatus"] == "running" and a["JobVersion"] == 0
            for a in n.job.get_allocations("compat-purge")
        ),
    )
    n.job.deregister_job("compat-purge", purge=True)
    n.job.deregister_job("compat-revert", purge=True)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    n = nomad.Nomad(host=host, port=port, timeout=10)
    check_dispatch(n)
    check_revert_and_stable(n)
    check_plan(n)
    check_purge_then_register(n)
    print("python-nomad: dispatch, revert, stable, plan and purge-then-register answered as Nomad does")


if __name__ == "__main__":
    main()

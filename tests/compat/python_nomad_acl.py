"""Drives Caravan's ACL and Namespace APIs with python-nomad, unmodified, against a cluster
started with ACLs on and not yet bootstrapped.

Usage: python python_nomad_acl.py HOST PORT
Exits non-zero, with the failing step, if any call fails or answers differently than Nomad.
"""

import sys

import nomad
import nomad.api.exceptions as exc


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    anon = nomad.Nomad(host=host, port=port, timeout=10)

    boot = anon.acl.generate_bootstrap()
    assert boot["Type"] == "management" and boot["Name"] == "Bootstrap Token", boot
    root = nomad.Nomad(host=host, port=port, timeout=10, token=boot["SecretID"])
    try:
        anon.acl.generate_bootstrap()
        raise AssertionError("a second bootstrap was accepted")
    except exc.BaseNomadException as e:
        assert "ACL bootstrap already done" in e.nomad_resp.text, e.nomad_resp.text

    # Without a token nothing is readable.
    try:
        anon.jobs.get_jobs()
        raise AssertionError("an anonymous caller listed jobs")
    except exc.BaseNomadException as e:
        assert e.nomad_resp.status_code == 403, e.nomad_resp.status_code

    # Namespaces.
    root.namespace.create_namespace({"Name": "py-ns", "Description": "from python"})
    assert root.namespace.get_namespace("py-ns")["Description"] == "from python"
    root.namespace.update_namespace("py-ns", {"Name": "py-ns", "Description": "changed"})
    names = [ns["Name"] for ns in root.namespaces.get_namespaces()]
    assert names == ["default", "py-ns"], names

    # Policies.
    rules = 'namespace "py-ns" { policy = "read" }'
    root.acl.create_policy("py-read", {"Name": "py-read", "Description": "d", "Rules": rules})
    policy = root.acl.get_policy("py-read")
    assert policy["Rules"] == rules and policy["RulesJSON"]["Namespaces"][0]["Name"] == "py-ns", policy
    root.acl.update_policy("py-read", {"Name": "py-read", "Description": "e", "Rules": rules})
    assert [p["Name"] for p in root.acl.get_policies()] == ["py-read"]

    # Tokens.
    token = root.acl.create_token({"Name": "py", "Type": "client", "Policies": ["py-read"]})
    assert token["SecretID"] and token["AccessorID"], token
    assert root.acl.get_token(token["AccessorID"])["Name"] == "py"
    updated = root.acl.update_token(
        token["AccessorID"],
        {"AccessorID": token["AccessorID"], "Name": "py2", "Type": "client", "Policies": ["py-read"]},
    )
    assert updated["Name"] == "py2", updated
    accessors = [t["AccessorID"] for t in root.acl.get_tokens()]
    assert token["AccessorID"] in accessors and boot["AccessorID"] in accessors, accessors

    user = nomad.Nomad(host=host, port=port, timeout=10, token=token["SecretID"])
    assert user.acl.get_self_token()["AccessorID"] == token["AccessorID"]
    scoped = nomad.Nomad(host=host, port=port, timeout=10, token=token["SecretID"], namespace="py-ns")
    assert scoped.jobs.get_jobs() == []
    try:
        user.jobs.get_jobs()  # the default namespace
        raise AssertionError("a py-ns token listed the default namespace's jobs")
    except exc.BaseNomadException as e:
        assert e.nomad_resp.status_code == 403, e.nomad_resp.status_code
    try:
        user.acl.get_tokens()
        raise AssertionError("a client token listed tokens")
    except exc.BaseNomadException as e:
        assert e.nomad_resp.status_code == 403, e.nomad_resp.status_code

    # Deleting the token ends its access at once.
    assert root.acl.delete_token(token["AccessorID"])
    try:
        scoped.jobs.get_jobs()
        raise AssertionError("a deleted token still listed jobs")
    except exc.BaseNomadException as e:
        assert e.nomad_resp.status_code == 403, e.nomad_resp.status_code

    assert root.acl.delete_policy("py-read")
    assert root.acl.get_policies() == []
    root.namespace.delete_namespace("py-ns")
    assert [ns["Name"] for ns in root.namespaces.get_namespaces()] == ["default"]
    try:
        root.namespace.delete_namespace("default")
        raise AssertionError("the default namespace was deleted")
    except exc.BaseNomadException as e:
        assert "can not delete default namespace" in e.nomad_resp.text, e.nomad_resp.text
    print("python-nomad ACL and namespace APIs: ok")


if __name__ == "__main__":
    main()

"""deploy/kubernetes/components/audit-trail: the example overlay with the component renders, and
the service writes its audit trail, named after its pod, onto the shared claim."""

import manifests
from manifests import of_kind


def audit_objects(renders) -> list[dict]:
    return renders.objects("audit-trail")


def service(objects: list[dict]) -> manifests.Workload:
    (deployment,) = [d for d in of_kind(objects, "Deployment") if d["metadata"]["name"].endswith("card-lookup")]
    return manifests.Workload(deployment)


def env(workload: manifests.Workload) -> dict[str, dict]:
    return {e["name"]: e for e in workload.container.get("env", [])}


def test_the_trail_is_written_onto_the_shared_claim(renders):
    objects = audit_objects(renders)
    workload = service(objects)
    directory = env(workload)["CARD_LOOKUP_AUDIT_DIR"]["value"]
    (mount,) = [m for m in workload.mounts if m["mountPath"] == directory]
    assert not mount.get("readOnly"), mount
    claim = workload.volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    (pvc,) = [p for p in of_kind(objects, "PersistentVolumeClaim") if p["metadata"]["name"] == claim]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"], "replicas on several nodes write at once"


def test_each_replica_is_named_after_its_pod_and_blocks_rather_than_answer_unaudited(renders):
    workload = service(audit_objects(renders))
    variables = env(workload)
    assert variables["CARD_LOOKUP_REPLICA_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert variables["CARD_LOOKUP_AUDIT_OVERFLOW"]["value"] == "block"


def test_the_service_user_can_write_the_claim(renders):
    workload = service(audit_objects(renders))
    assert workload.pod["securityContext"]["fsGroup"] == workload.run_as_user

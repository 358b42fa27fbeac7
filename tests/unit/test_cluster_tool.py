"""The local cluster tool's pure parts, without root or a cluster (the cluster tier runs the rest)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.cluster import addons, build, forwarder, images, layout, node


def test_binaries_are_named_as_the_tool_runs_them() -> None:
    programs = {p.name: p for p in build.PROGRAMS}
    assert set(programs["kubernetes"].binaries) == set(build.KUBERNETES_BINARIES)
    assert programs["etcd"].binaries == {"etcd": "server"}  # go names go.etcd.io/etcd/server/v3 "server"
    assert programs["coredns"].binaries == {"coredns": "wrapper"}  # our own main package


def test_the_kubernetes_build_reports_its_real_version() -> None:
    flags = " ".join(next(p for p in build.PROGRAMS if p.name == "kubernetes").ldflags)
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.36.3" in flags  # else /version says v0.0.0 and Pulumi refuses the cluster
        assert f"-X {package}.gitMinor=36" in flags


def test_the_forwarder_listens_on_loopback_only() -> None:
    rule = forwarder.Rule.parse("127.0.0.1:16443=aim-cp/10.250.0.1:6443")
    assert (rule.listen_port, rule.netns, rule.host, rule.port) == (16443, "aim-cp", "10.250.0.1", 6443)
    with pytest.raises(SystemExit, match=r"127\.0\.0\.1 only"):
        forwarder.Rule.parse("0.0.0.0:16443=aim-cp/10.250.0.1:6443")


def test_every_addon_runs_an_image_the_tool_builds() -> None:
    built = {image.ref for image in images.ADDON_IMAGES}
    pods = [o["spec"]["template"]["spec"] for o in addons.all_addons(Path("/state")) if o["kind"] in ("Deployment", "DaemonSet")]
    assert len(pods) == len(addons.WORKLOADS)
    for pod in pods:
        for container in pod["containers"]:
            assert container["image"] in built, container["image"]
            assert container["imagePullPolicy"] == "IfNotPresent"  # preloaded: never pulled


def test_cluster_dns_pods_carry_the_labels_the_platforms_dns_policy_allows() -> None:
    from settings.network_policy import NetworkPolicySettings

    dns = next(o for o in addons.coredns() if o["kind"] == "Deployment")
    labels = dns["spec"]["template"]["metadata"]["labels"]
    assert NetworkPolicySettings().dns_pod_labels.items() <= labels.items()
    assert NetworkPolicySettings().dns_namespace == dns["metadata"]["namespace"]


def test_the_default_storage_class_is_honest_about_expansion() -> None:
    classes = [o for o in addons.all_addons(Path("/state")) if o["kind"] == "StorageClass"]
    assert [c["metadata"]["name"] for c in classes] == ["standard"]
    assert classes[0]["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert classes[0]["allowVolumeExpansion"] is False
    assert classes[0]["volumeBindingMode"] == "WaitForFirstConsumer"


def test_a_node_resolves_and_pulls_only_inside_the_cluster(tmp_path: Path) -> None:
    n = layout.Node(2)
    etc = n.dir(tmp_path) / "etc"
    (etc / "certs.d").mkdir(parents=True)
    node._write_registry_mirrors(etc / "certs.d")
    for registry in layout.MIRRORED_REGISTRIES:
        text = (etc / "certs.d" / registry / "hosts.toml").read_text()
        assert 'server = "http://10.96.0.20:5000"' in text, registry
    kubelet = node._kubelet_config(n, tmp_path)
    assert kubelet["clusterDNS"] == [layout.DNS_SERVICE_IP]
    assert kubelet["protectKernelDefaults"] is True  # check the tunables, never write the host's
    assert kubelet["cgroupRoot"] == "/"  # the node's cgroup namespace: "/" is our own subtree
    # the host's shared disk: no eviction by percentage, no GC of the preloaded images
    assert not str(kubelet["evictionHard"]["imagefs.available"]).endswith("%")
    assert kubelet["imageGCHighThresholdPercent"] == 100
    proxy = node._kube_proxy_config(n, etc)
    assert proxy["conntrack"]["maxPerCore"] == 0  # leave the global nf_conntrack_max alone
    assert json.dumps(proxy)


def test_zones_are_spread_round_robin() -> None:
    assert [n.zone for n in layout.nodes(7)] == ["zone-a", "zone-b", "zone-c", "zone-a", "zone-b", "zone-c", "zone-a"]
    assert len({n.ip for n in layout.nodes(7)}) == 7
    assert all(len(n.fabric_port) <= 15 and len(n.netns) <= 15 for n in layout.nodes(20))  # Linux interface name limit

//! Cluster DNS on the node: CoreDNS (built from its Go module by `tests/coredns/build.sh`, in an
//! image built here) as a Deployment in kube-system behind the Service `kube-dns` at the kubelet's
//! `clusterDNS` address, serving `cluster.local` from the API server with its kubernetes plugin,
//! as a user's cluster does. It forwards nothing: a name outside the cluster gets no answer, so no
//! query ever leaves the node.

use std::time::Duration;

use crate::{
    node::{DNS_SERVICE_IP, Node},
    tools::image::scratch,
    tools::repo::script,
};

/// The port CoreDNS listens on inside its pod (unprivileged); the Service maps 53 to it.
const PORT: u16 = 1053;

/// Deploys CoreDNS on `node` and waits until it is ready (it has read the Services).
pub fn deploy(node: &Node) {
    let binary = script("tests/coredns/build.sh");
    let image = scratch(
        "coredns",
        &[(&binary, "/coredns")],
        "65532:65532",
        &["/coredns", "-conf", "/etc/coredns/Corefile"],
    );
    node.import(&image);
    let corefile = format!(
        ".:{PORT} {{\n    errors\n    ready :8181\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        pods insecure\n    }}\n    cache 5\n}}\n"
    );
    let objects = [
        serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "coredns", "namespace": "kube-system"}}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "system:coredns"},
        "rules": [
            {"apiGroups": [""], "resources": ["services", "pods", "namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        ]}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]}),
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": corefile}}),
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "template": {
                "metadata": {"labels": {"k8s-app": "kube-dns"}},
                "spec": {
                    "serviceAccountName": "coredns",
                    "dnsPolicy": "Default",
                    "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "coredns",
                        "image": image.reference,
                        "imagePullPolicy": "Never",
                        "ports": [
                            {"name": "dns", "containerPort": PORT, "protocol": "UDP"},
                            {"name": "dns-tcp", "containerPort": PORT, "protocol": "TCP"},
                        ],
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 1},
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns", "readOnly": true}],
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                },
            },
        }}),
        serde_json::json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "clusterIP": DNS_SERVICE_IP,
            "selector": {"k8s-app": "kube-dns"},
            "ports": [
                {"name": "dns", "port": 53, "targetPort": PORT, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "targetPort": PORT, "protocol": "TCP"},
            ],
        }}),
    ];
    node.cp.apply_objects(&objects);
    node.wait_until("CoreDNS ready", Duration::from_secs(90), || {
        node.cp
            .kubectl_output(&[
                "get",
                "deployment",
                "coredns",
                "-n",
                "kube-system",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ])
            .stdout
            == b"1"
    });
}

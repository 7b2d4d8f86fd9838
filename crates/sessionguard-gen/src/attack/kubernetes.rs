//! The Kubernetes attacks: scripts of API requests ([`k8s::Tpl`], as the benign sessions'
//! tables use) by a credential the attack owns — a web pod's service-account token, or a
//! developer's client certificate.

use std::rc::Rc;

use super::{Attack, Builder, Kind, Mark, Oracle, Plan, Render, Secs};
use crate::kubernetes::{self as k8s, req, As, Caller, Cred, Named, Ns, Obj, Scope, Sender};
use crate::out::{self, s};
use crate::pools::private_ip;
use crate::rng::hash2;
use crate::Source;

/// A credential an attack owns, as its audit events show it.
struct Side {
    username: Vec<u8>,
    uid: Vec<u8>,
    groups: Vec<u8>,
    jti: Option<u64>,
    fingerprint: u64,
    pod: Option<(&'static str, u64, u32)>,
}

impl Side {
    fn caller(&self) -> Caller<'_> {
        Caller {
            username: &self.username,
            uid: &self.uid,
            groups: &self.groups,
            cred: match self.jti {
                Some(jti) => Cred::Token { jti, pod: self.pod },
                None => Cred::Cert {
                    fingerprint: self.fingerprint,
                },
            },
        }
    }

    fn key(&self) -> String {
        let mut b = Vec::new();
        match self.jti {
            Some(j) => {
                s(&mut b, "k8s:jti:");
                k8s::jti(&mut b, j);
            }
            None => {
                s(&mut b, "k8s:x509:");
                k8s::fingerprint(&mut b, self.fingerprint);
            }
        }
        String::from_utf8(b).unwrap_or_default()
    }
}

/// The web frontend pod's service-account token.
fn frontend_token(plan: &Plan<'_>) -> Rc<Side> {
    let mut uid = Vec::new();
    out::uuid(&mut uid, hash2(plan.seed, 7));
    Rc::new(Side {
        username: b"system:serviceaccount:web:frontend".to_vec(),
        uid,
        groups:
            b"\"system:serviceaccounts\",\"system:serviceaccounts:web\",\"system:authenticated\""
                .to_vec(),
        jti: Some(hash2(plan.seed, 1)),
        fingerprint: 0,
        pod: Some(("frontend", hash2(plan.seed, 3), (plan.seed % 97) as u32)),
    })
}

/// A line of a script: the delay range before the request, how it counts, the request.
type Line = (Secs, Mark, k8s::Tpl);

impl<'p> Builder<'p> {
    /// Adds the requests of `lines` by `side` from `addr`.
    fn k8s(
        &mut self,
        side: &Rc<Side>,
        addr: u32,
        ua: &'static str,
        lines: impl IntoIterator<Item = Line>,
    ) {
        self.script(Source::Kubernetes, 0, lines, |tpl| {
            render(side, addr, ua, tpl)
        });
    }
}

fn render<'p>(side: &Rc<Side>, addr: u32, ua: &'static str, tpl: k8s::Tpl) -> Render<'p> {
    let side = Rc::clone(side);
    Box::new(move |b, t, seed| {
        let scope = Scope {
            ns: "",
            sa: "",
            node: 0,
            t,
            seed,
        };
        let from = Sender {
            caller: side.caller(),
            addr,
            ua,
            reason: "RBAC: allowed by ClusterRoleBinding \\\"frontend-legacy-ops\\\" of ClusterRole \\\"ops-manager\\\"",
        };
        k8s::send(b, &tpl, &scope, &from);
    })
}

const WEB: Ns = Ns::Fixed("web");
const KUBE_SYSTEM: Ns = Ns::Fixed("kube-system");
const SYSTEM_ADMIN: As = As::Fixed(
    "system:admin",
    "\"system:masters\",\"system:authenticated\"",
);

/// A service-account token used from its pod, then replayed from outside the cluster.
pub fn k8s_reuse<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let side = frontend_token(plan);
    let pod = private_ip(42, plan.seed);
    let lease = req("update", "leases", WEB)
        .group("coordination.k8s.io")
        .name(Named::Fixed("frontend-leader"));
    let config = req("get", "configmaps", WEB).name(Named::Fixed("frontend-config"));
    let mut bld = Builder::new(plan.seed);
    bld.k8s(
        &side,
        pod,
        "frontend/v2.14.0 (linux/amd64) kubernetes/v0.31.1",
        std::iter::once(((0, 0), Mark::None, config))
            .chain((0..3).map(|_| ((5, 15), Mark::None, lease))),
    );
    bld.k8s(
        &side,
        plan.attacker,
        "kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
        [
            ((30, 120), Mark::Trigger, req("list", "secrets", WEB)),
            (
                (10, 30),
                Mark::None,
                req("get", "secrets", WEB).name(Named::Fixed("frontend-credentials")),
            ),
        ],
    );
    let keys = vec![(Source::Kubernetes, side.key())];
    bld.finish(plan, Kind::TokenReuseNetwork, keys, Oracle::First)
}

/// A web pod's token binds itself to cluster-admin; or a developer's certificate impersonates
/// `system:admin` in `system:masters`.
pub fn k8s_cluster_admin<'p>(plan: &Plan<'p>) -> Attack<'p> {
    let mut bld = Builder::new(plan.seed);
    let side = if plan.variant.is_multiple_of(2) {
        let side = frontend_token(plan);
        bld.k8s(
            &side,
            private_ip(42, plan.seed),
            "kubectl/v1.30.4 (linux/amd64) kubernetes/a51b3b7",
            [
                (
                    (0, 0),
                    Mark::None,
                    req("create", "selfsubjectrulesreviews", Ns::Cluster)
                        .group("authorization.k8s.io")
                        .code(201),
                ),
                (
                    (10, 40),
                    Mark::None,
                    req("list", "secrets", Ns::Cluster).code(403),
                ),
                (
                    (20, 60),
                    Mark::Trigger,
                    req("create", "clusterrolebindings", Ns::Cluster)
                        .name(Named::Fixed("frontend-cluster-admin"))
                        .group("rbac.authorization.k8s.io")
                        .code(201)
                        .obj(Obj::ClusterAdmin),
                ),
                ((10, 40), Mark::None, req("list", "secrets", KUBE_SYSTEM)),
            ],
        );
        side
    } else {
        let person = &plan.pools.people[(plan.seed % plan.pools.people.len() as u64) as usize];
        let side = Rc::new(Side {
            username: person.login.as_bytes().to_vec(),
            uid: Vec::new(),
            groups: b"\"platform-devs\",\"system:authenticated\"".to_vec(),
            jti: None,
            fingerprint: hash2(plan.seed, 1),
            pod: None,
        });
        bld.k8s(
            &side,
            person.home_net | 61,
            "kubectl/v1.31.1 (darwin/arm64) kubernetes/948afe5",
            [
                (
                    (0, 0),
                    Mark::None,
                    req("list", "pods", Ns::Fixed("payments")),
                ),
                ((10, 40), Mark::None, req("list", "namespaces", Ns::Cluster)),
                (
                    (20, 60),
                    Mark::Trigger,
                    req("list", "secrets", KUBE_SYSTEM).imp(SYSTEM_ADMIN),
                ),
                (
                    (10, 40),
                    Mark::None,
                    req("get", "secrets", KUBE_SYSTEM)
                        .imp(SYSTEM_ADMIN)
                        .name(Named::Fixed("aws-load-balancer-tls")),
                ),
            ],
        );
        side
    };
    let keys = vec![(Source::Kubernetes, side.key())];
    bld.finish(plan, Kind::K8sClusterAdmin, keys, Oracle::First)
}

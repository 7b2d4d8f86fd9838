//! Kubernetes API server audit events (`audit.k8s.io/v1`, stage `ResponseComplete`), and the
//! benign cluster sessions of the generated traffic.
//!
//! Callers carry their credential id in `user.extra["authentication.kubernetes.io/credential-id"]`
//! (Kubernetes 1.29+): `JTI=<uuid>` for service-account tokens (with the pod and node a bound
//! token was issued to), `X509SHA256=<fingerprint>` for client certificates. Workloads and
//! controllers read config, renew leader-election leases and watch endpoints from pod addresses;
//! kubelets renew node leases and mint tokens for their pods; people use kubectl from the office
//! or home (sometimes impersonating an ordinary service account to check its access); CI
//! deploys and binds namespaces to `view`/`edit` from its runners. RBAC writes and deployment
//! patches are logged at `RequestResponse` level with their `requestObject`.

use super::out::{self, s, Body};
use super::pools::{private_ip, runner_ip, KUBECTL_AGENTS};
use super::session::{Env, Profile, Sess};

/// A credential as the audit event's `user` shows it.
pub enum Cred {
    /// Service-account token: JTI seed, and the pod and node it was bound to.
    Token {
        jti: u64,
        pod: Option<(&'static str, u64, u32)>,
    },
    /// Client certificate: fingerprint seed.
    Cert { fingerprint: u64 },
}

pub struct Caller<'a> {
    /// `system:serviceaccount:<ns>:<name>`, `system:node:<node>`, or a person's name.
    pub username: &'a [u8],
    pub uid: &'a [u8],
    /// Written as the `groups` array contents.
    pub groups: &'a [u8],
    pub cred: Cred,
}

/// One request.
pub struct Request<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a [u8]>,
    pub api_group: &'a str,
    pub api_version: &'a str,
    pub code: u64,
    pub reason: &'a str,
    /// `impersonatedUser`: username and groups (array contents).
    pub impersonate: Option<(&'a str, &'a str)>,
}

impl<'a> Request<'a> {
    pub fn new(verb: &'a str, resource: &'a str, namespace: Option<&'a str>) -> Self {
        Request {
            verb,
            resource,
            subresource: None,
            namespace,
            name: None,
            api_group: "",
            api_version: "v1",
            code: 200,
            reason: "",
            impersonate: None,
        }
    }
}

/// A credential id's value (`JTI=…` or `X509SHA256=…`, without the prefix).
pub fn jti(b: &mut Vec<u8>, seed: u64) {
    out::uuid(b, seed);
}

pub fn fingerprint(b: &mut Vec<u8>, seed: u64) {
    out::hex(b, seed, 64);
}

/// Renders one audit event at `t` (ms) from `addr`.
#[allow(clippy::too_many_arguments)]
pub fn write(
    b: &mut Vec<u8>,
    t: i64,
    caller: &Caller<'_>,
    req: &Request<'_>,
    addr: u32,
    ua: &str,
    request_object: Body<'_>,
    seed: u64,
) {
    s(
        b,
        "{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"",
    );
    s(
        b,
        if request_object.is_some() {
            "RequestResponse"
        } else {
            "Metadata"
        },
    );
    s(b, "\",\"auditID\":\"");
    out::uuid(b, seed);
    s(b, "\",\"stage\":\"ResponseComplete\",\"requestURI\":\"");
    s(
        b,
        if req.api_group.is_empty() {
            "/api/"
        } else {
            "/apis/"
        },
    );
    if !req.api_group.is_empty() {
        s(b, req.api_group);
        b.push(b'/');
    }
    s(b, req.api_version);
    if let Some(ns) = req.namespace {
        s(b, "/namespaces/");
        s(b, ns);
    }
    b.push(b'/');
    s(b, req.resource);
    let named = !matches!(req.verb, "create" | "list" | "watch");
    if let (Some(name), true) = (req.name, named || req.subresource.is_some()) {
        b.push(b'/');
        b.extend_from_slice(name);
    }
    if let Some(sub) = req.subresource {
        b.push(b'/');
        s(b, sub);
    }
    match req.verb {
        "create" if req.subresource.is_none() => s(b, "?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"),
        "create" if req.subresource == Some("exec") => s(b, "?command=sh&container=app&stdin=true&stdout=true&tty=true"),
        "list" => s(b, "?limit=500"),
        "watch" => s(b, "?allowWatchBookmarks=true&resourceVersion=48211937&timeout=7m41s&timeoutSeconds=461&watch=true"),
        "patch" => s(b, "?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"),
        _ => {}
    }
    s(b, "\",\"verb\":\"");
    s(b, req.verb);
    s(b, "\",\"user\":{\"username\":\"");
    b.extend_from_slice(caller.username);
    s(b, "\",\"uid\":\"");
    b.extend_from_slice(caller.uid);
    s(b, "\",\"groups\":[");
    b.extend_from_slice(caller.groups);
    s(
        b,
        "],\"extra\":{\"authentication.kubernetes.io/credential-id\":[\"",
    );
    match caller.cred {
        Cred::Token { jti: j, pod } => {
            s(b, "JTI=");
            jti(b, j);
            b.push(b'"');
            if let Some((pod_name, pod_seed, node)) = pod {
                s(b, "],\"authentication.kubernetes.io/node-name\":[\"");
                node_name(b, node);
                s(b, "\"],\"authentication.kubernetes.io/node-uid\":[\"");
                out::uuid(b, u64::from(node) ^ 0x0de);
                s(b, "\"],\"authentication.kubernetes.io/pod-name\":[\"");
                s(b, pod_name);
                b.push(b'-');
                out::hex(b, pod_seed, 9);
                b.push(b'-');
                out::chars(b, b"bcdfghjklmnpqrstvwxz2456789", pod_seed ^ 1, 5);
                s(b, "\"],\"authentication.kubernetes.io/pod-uid\":[\"");
                out::uuid(b, pod_seed);
                b.push(b'"');
            }
        }
        Cred::Cert { fingerprint: f } => {
            s(b, "X509SHA256=");
            fingerprint(b, f);
            b.push(b'"');
        }
    }
    s(b, "]}}");
    if let Some((user, groups)) = req.impersonate {
        s(b, ",\"impersonatedUser\":{\"username\":\"");
        s(b, user);
        s(b, "\",\"groups\":[");
        s(b, groups);
        s(b, "]}");
    }
    s(b, ",\"sourceIPs\":[\"");
    out::ip(b, addr);
    s(b, "\"],\"userAgent\":\"");
    s(b, ua);
    s(b, "\",\"objectRef\":{\"resource\":\"");
    s(b, req.resource);
    b.push(b'"');
    if let Some(ns) = req.namespace {
        s(b, ",\"namespace\":\"");
        s(b, ns);
        b.push(b'"');
    }
    if let Some(name) = req.name {
        s(b, ",\"name\":\"");
        b.extend_from_slice(name);
        b.push(b'"');
    }
    if !req.api_group.is_empty() {
        s(b, ",\"apiGroup\":\"");
        s(b, req.api_group);
        b.push(b'"');
    }
    s(b, ",\"apiVersion\":\"");
    s(b, req.api_version);
    b.push(b'"');
    if let Some(sub) = req.subresource {
        s(b, ",\"subresource\":\"");
        s(b, sub);
        b.push(b'"');
    }
    s(b, "},\"responseStatus\":{\"metadata\":{},");
    if req.code >= 400 {
        s(b, "\"status\":\"Failure\",\"message\":\"");
        s(b, req.resource);
        s(b, " is forbidden: User \\\"");
        b.extend_from_slice(caller.username);
        s(b, "\\\" cannot ");
        s(b, req.verb);
        s(b, " resource \\\"");
        s(b, req.resource);
        s(b, "\\\" in API group \\\"");
        s(b, req.api_group);
        s(
            b,
            "\\\" at the cluster scope\",\"reason\":\"Forbidden\",\"details\":{\"kind\":\"",
        );
        s(b, req.resource);
        s(b, "\"},");
    }
    s(b, "\"code\":");
    out::u(b, req.code);
    b.push(b'}');
    if let Some(f) = request_object {
        s(b, ",\"requestObject\":");
        f(b);
    }
    let us = t * 1000 + (seed % 1000) as i64;
    let latency = 900 + (seed >> 20) % 30_000;
    s(b, ",\"requestReceivedTimestamp\":\"");
    out::time_us(b, us - latency as i64);
    s(b, "\",\"stageTimestamp\":\"");
    out::time_us(b, us);
    s(
        b,
        "\",\"annotations\":{\"authorization.k8s.io/decision\":\"",
    );
    s(b, if req.code == 403 { "forbid" } else { "allow" });
    s(b, "\",\"authorization.k8s.io/reason\":\"");
    s(b, req.reason);
    s(b, "\"}}");
}

/// `ip-10-42-x-y.ec2.internal` of node `n`.
pub fn node_name(b: &mut Vec<u8>, n: u32) {
    let addr = node_addr(n);
    s(b, "ip-10-42-");
    out::u(b, u64::from((addr >> 8) & 0xff));
    b.push(b'-');
    out::u(b, u64::from(addr & 0xff));
    s(b, ".ec2.internal");
}

pub fn node_addr(n: u32) -> u32 {
    (10 << 24) | (42 << 16) | ((n / 200) << 8) | (10 + n % 200)
}

/// Workload namespaces and service accounts (namespace, account, agent name).
const WORKLOADS: &[(&str, &str)] = &[
    ("payments", "api"),
    ("payments", "ledger"),
    ("orders", "orders-api"),
    ("orders", "checkout"),
    ("catalog", "search-indexer"),
    ("catalog", "catalog"),
    ("web", "frontend"),
    ("notifications", "email-sender"),
    ("data", "spark-operator"),
    ("data", "airflow-worker"),
    ("shipping", "tracker"),
    ("identity", "auth-gateway"),
];

const CONTROLLERS: &[(&str, &str, &str)] = &[
    (
        "kube-system",
        "coredns",
        "coredns/v1.11.3 (linux/amd64) kubernetes/v0.29.3",
    ),
    (
        "kube-system",
        "cluster-autoscaler",
        "cluster-autoscaler/v1.31.0 (linux/amd64) kubernetes/v0.31.1",
    ),
    (
        "kube-system",
        "aws-load-balancer-controller",
        "controller/v2.9.2 (linux/amd64) kubernetes/v0.31.1",
    ),
    (
        "kube-system",
        "external-dns",
        "external-dns/v0.15.0 (linux/amd64) kubernetes/v0.31.1",
    ),
    (
        "cert-manager",
        "cert-manager",
        "cert-manager-controller/v1.16.1 (linux/amd64) kubernetes/v0.31.1",
    ),
    ("monitoring", "prometheus", "Prometheus/2.54.1"),
    (
        "argocd",
        "argocd-application-controller",
        "argocd-application-controller/v2.12.4 (linux/amd64) kubernetes/v0.29.6",
    ),
];

pub fn new_session(env: &mut Env<'_>, nodes: u32) -> Sess {
    let id = env.new_id();
    let pick = env.rng.weighted(&[50, 18, 14, 12, 6]);
    let (profile, who, addr, budget, pace) = match pick {
        0 => {
            let w = env.rng.below(WORKLOADS.len() as u64) as u32;
            (
                Profile::PodToken,
                w,
                private_ip(42, id),
                env.length(4.0, 1.1, 20_000),
                300 + env.rng.below(3_000) as u32,
            )
        }
        1 => {
            let c = env.rng.below(CONTROLLERS.len() as u64) as u32;
            (
                Profile::Controller,
                c,
                private_ip(42, id),
                env.length(10.0, 1.1, 50_000),
                150,
            )
        }
        2 => {
            let n = env.rng.below(u64::from(nodes.max(1))) as u32;
            (
                Profile::Node,
                n,
                node_addr(n),
                env.length(10.0, 1.2, 20_000),
                400,
            )
        }
        3 => {
            let person = env.rng.below(env.pools.people.len() as u64) as u32;
            let office = env.pools.people[person as usize].in_office;
            let (addr, flags) = env.person_addr(person, office);
            let mut sess = Sess::new(
                id,
                Profile::KubeUser,
                person,
                0,
                addr,
                env.length(2.0, 1.3, 600),
            );
            sess.flags = flags;
            sess.pace = 1_200;
            sess.aux = env.rng.below(WORKLOADS.len() as u64) as u32;
            return sess;
        }
        _ => {
            let w = env.rng.below(WORKLOADS.len() as u64) as u32;
            (
                Profile::KubeCi,
                w,
                runner_ip(id),
                env.length(4.0, 1.5, 40),
                600,
            )
        }
    };
    let mut sess = Sess::new(id, profile, who, 0, addr, budget);
    sess.pace = pace;
    sess
}

pub fn lifetime_ms(profile: Profile) -> i64 {
    match profile {
        // Bound service-account tokens live an hour; kubelet refreshes them before that.
        Profile::PodToken | Profile::Controller | Profile::KubeCi => 3_600_000,
        _ => i64::MAX / 4,
    }
}

fn cred_of(env: &Env<'_>, sess: &Sess) -> Cred {
    match sess.profile {
        Profile::Node => Cred::Cert {
            fingerprint: super::rng::hash2(env.seed ^ 0x0de, u64::from(sess.who)),
        },
        Profile::KubeUser => Cred::Cert {
            fingerprint: sess.key_seed(env.seed, 1),
        },
        Profile::PodToken => Cred::Token {
            jti: sess.key_seed(env.seed, 1),
            pod: Some((
                WORKLOADS[sess.who as usize].1,
                sess.key_seed(env.seed, 3),
                (sess.id % 97) as u32,
            )),
        },
        Profile::Controller => Cred::Token {
            jti: sess.key_seed(env.seed, 1),
            pod: Some((
                CONTROLLERS[sess.who as usize].1,
                sess.key_seed(env.seed, 3),
                (sess.id % 97) as u32,
            )),
        },
        _ => Cred::Token {
            jti: sess.key_seed(env.seed, 1),
            pod: None,
        },
    }
}

pub fn session_key(env: &Env<'_>, sess: &Sess, key: &mut String) {
    let mut b = Vec::with_capacity(80);
    match cred_of(env, sess) {
        Cred::Token { jti: j, .. } => {
            s(&mut b, "k8s:jti:");
            jti(&mut b, j);
        }
        Cred::Cert { fingerprint: f } => {
            s(&mut b, "k8s:x509:");
            fingerprint(&mut b, f);
        }
    }
    key.clear();
    key.push_str(std::str::from_utf8(&b).unwrap_or(""));
}

const SA_GROUPS_PREFIX: &str = "\"system:serviceaccounts\",\"system:serviceaccounts:";

fn sa_caller(ns: &str, name: &str, user: &mut Vec<u8>, uid: &mut Vec<u8>, groups: &mut Vec<u8>) {
    user.clear();
    s(user, "system:serviceaccount:");
    s(user, ns);
    user.push(b':');
    s(user, name);
    uid.clear();
    out::uuid(uid, super::rng::hash_str(ns) ^ super::rng::hash_str(name));
    groups.clear();
    s(groups, SA_GROUPS_PREFIX);
    s(groups, ns);
    s(groups, "\",\"system:authenticated\"");
}

pub fn emit(env: &mut Env<'_>, sess: &mut Sess, t: i64, b: &mut Vec<u8>) {
    let mut user = Vec::with_capacity(64);
    let mut uid = Vec::with_capacity(40);
    let mut groups = Vec::with_capacity(96);
    let mut name = Vec::with_capacity(64);
    sess.rotate(&mut env.rng);
    let seed = sess.key_seed(env.seed, 0x3000 + u64::from(sess.step));
    let cred = cred_of(env, sess);
    let rng = &mut env.rng;
    match sess.profile {
        Profile::PodToken | Profile::KubeCi => {
            let (ns, sa) = WORKLOADS[sess.who as usize];
            let ci = sess.profile == Profile::KubeCi;
            if ci {
                sa_caller("ci", "deployer", &mut user, &mut uid, &mut groups);
            } else {
                sa_caller(ns, sa, &mut user, &mut uid, &mut groups);
            }
            let caller = Caller {
                username: &user,
                uid: &uid,
                groups: &groups,
                cred,
            };
            let mut ua = Vec::with_capacity(64);
            if ci {
                s(&mut ua, KUBECTL_AGENTS[2]);
            } else {
                s(&mut ua, sa);
                s(&mut ua, "/v2.14.0 (linux/amd64) kubernetes/v0.31.1");
            }
            let ua = std::str::from_utf8(&ua).unwrap_or("");
            let mut reason = Vec::with_capacity(128);
            s(&mut reason, "RBAC: allowed by RoleBinding \\\"");
            s(&mut reason, if ci { "deployer" } else { sa });
            s(&mut reason, "/");
            s(&mut reason, ns);
            s(
                &mut reason,
                if ci {
                    "\\\" of ClusterRole \\\"edit\\\" to ServiceAccount \\\"deployer/ci\\\""
                } else {
                    "\\\" of Role \\\"app\\\" to ServiceAccount"
                },
            );
            let reason = std::str::from_utf8(&reason).unwrap_or("");
            if ci {
                ci_request(rng, ns, sa, &caller, sess.addr, ua, reason, t, seed, b);
                return;
            }
            let pick = rng.weighted(&[30, 14, 18, 12, 8, 6, 8]);
            let mut r;
            match pick {
                0 | 1 => {
                    r = Request::new(
                        "get",
                        if pick == 0 { "configmaps" } else { "secrets" },
                        Some(ns),
                    );
                    s(&mut name, sa);
                    s(
                        &mut name,
                        if pick == 0 { "-config" } else { "-credentials" },
                    );
                    r.name = Some(&name);
                }
                2 | 3 => {
                    r = Request::new(if pick == 2 { "update" } else { "get" }, "leases", Some(ns));
                    r.api_group = "coordination.k8s.io";
                    s(&mut name, sa);
                    s(&mut name, "-leader");
                    r.name = Some(&name);
                }
                4 => {
                    r = Request::new("list", "endpointslices", Some(ns));
                    r.api_group = "discovery.k8s.io";
                }
                5 => r = Request::new("watch", "configmaps", Some(ns)),
                _ => {
                    r = Request::new("create", "events", Some(ns));
                    r.api_group = "events.k8s.io";
                    r.code = 201;
                }
            }
            r.reason = reason;
            write(b, t, &caller, &r, sess.addr, ua, None, seed);
        }
        Profile::Controller => {
            let (ns, sa, ua) = CONTROLLERS[sess.who as usize];
            sa_caller(ns, sa, &mut user, &mut uid, &mut groups);
            let caller = Caller {
                username: &user,
                uid: &uid,
                groups: &groups,
                cred,
            };
            let pick = rng.weighted(&[30, 20, 15, 10, 10, 8]);
            let mut r;
            match pick {
                0 | 1 => {
                    r = Request::new(if pick == 0 { "update" } else { "get" }, "leases", Some(ns));
                    r.api_group = "coordination.k8s.io";
                    s(&mut name, sa);
                    r.name = Some(&name);
                }
                2 => {
                    r = Request::new("watch", "endpointslices", None);
                    r.api_group = "discovery.k8s.io";
                }
                3 => r = Request::new("list", "pods", None),
                4 => r = Request::new("list", "nodes", None),
                _ => {
                    r = Request::new("watch", "services", None);
                }
            }
            r.reason = "RBAC: allowed by ClusterRoleBinding";
            write(b, t, &caller, &r, sess.addr, ua, None, seed);
        }
        Profile::Node => {
            s(&mut user, "system:node:");
            node_name(&mut user, sess.who);
            s(&mut groups, "\"system:nodes\",\"system:authenticated\"");
            let caller = Caller {
                username: &user,
                uid: &uid,
                groups: &groups,
                cred,
            };
            const UA: &str = "kubelet/v1.31.1 (linux/amd64) kubernetes/948afe5";
            let (ns, sa) = WORKLOADS[rng.below(WORKLOADS.len() as u64) as usize];
            let pick = rng.weighted(&[35, 15, 15, 12, 10, 13]);
            let mut r;
            let mut node = Vec::with_capacity(40);
            node_name(&mut node, sess.who);
            match pick {
                0 => {
                    r = Request::new("update", "leases", Some("kube-node-lease"));
                    r.api_group = "coordination.k8s.io";
                    r.name = Some(&node);
                }
                1 => {
                    r = Request::new("patch", "nodes", None);
                    r.subresource = Some("status");
                    r.name = Some(&node);
                }
                2 => {
                    r = Request::new("create", "serviceaccounts", Some(ns));
                    r.subresource = Some("token");
                    s(&mut name, sa);
                    r.name = Some(&name);
                    r.code = 201;
                }
                3 | 4 => {
                    r = Request::new(
                        "get",
                        if pick == 3 { "configmaps" } else { "secrets" },
                        Some(ns),
                    );
                    s(&mut name, sa);
                    s(
                        &mut name,
                        if pick == 3 { "-config" } else { "-credentials" },
                    );
                    r.name = Some(&name);
                }
                _ => {
                    r = Request::new("get", "pods", Some(ns));
                    s(&mut name, sa);
                    b"-7d9f8b6c5-m8r2t".iter().for_each(|c| name.push(*c));
                    r.name = Some(&name);
                }
            }
            r.reason = "";
            write(b, t, &caller, &r, sess.addr, UA, None, seed);
        }
        _ => {
            // A person with kubectl.
            let person = &env.pools.people[sess.who as usize];
            s(&mut user, &person.login);
            s(&mut groups, "\"platform-devs\",\"system:authenticated\"");
            let caller = Caller {
                username: &user,
                uid: b"",
                groups: &groups,
                cred,
            };
            let ua = KUBECTL_AGENTS[(person.github_id % KUBECTL_AGENTS.len() as u64) as usize];
            let (ns, sa) = WORKLOADS[sess.aux as usize];
            let pick = rng.weighted(&[20, 14, 10, 6, 8, 5, 8, 4]);
            let mut r;
            let mut object: Body<'_> = None;
            let patch = |b: &mut Vec<u8>| {
                s(
                    b,
                    "{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/restartedAt\":\"",
                );
                out::time_s(b, t);
                s(b, "\"}},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"requests\":{\"cpu\":\"250m\",\"memory\":\"512Mi\"}}}]}}}}");
            };
            match pick {
                0 => r = Request::new("list", "pods", Some(ns)),
                1 => {
                    r = Request::new("get", "pods", Some(ns));
                    s(&mut name, sa);
                    s(&mut name, "-7d9f8b6c5-m8r2t");
                    r.name = Some(&name);
                    r.subresource = Some("log");
                }
                2 => {
                    r = Request::new("get", "deployments", Some(ns));
                    r.api_group = "apps";
                    s(&mut name, sa);
                    r.name = Some(&name);
                }
                3 => {
                    r = Request::new("create", "pods", Some(ns));
                    s(&mut name, sa);
                    s(&mut name, "-7d9f8b6c5-m8r2t");
                    r.name = Some(&name);
                    r.subresource = Some("exec");
                    r.code = 101;
                }
                4 => {
                    r = Request::new("patch", "deployments", Some(ns));
                    r.api_group = "apps";
                    s(&mut name, sa);
                    r.name = Some(&name);
                    object = Some(&patch);
                }
                5 => r = Request::new("list", "namespaces", None),
                6 => r = Request::new("list", "events", Some(ns)),
                _ => {
                    // Checking what a service account may do, as that account.
                    r = Request::new("list", "secrets", Some(ns));
                    r.code = 403;
                    let mut imp = Vec::with_capacity(64);
                    s(&mut imp, "system:serviceaccount:");
                    s(&mut imp, ns);
                    imp.push(b':');
                    s(&mut imp, sa);
                    name = imp;
                    let imp = std::str::from_utf8(&name).unwrap_or("");
                    r.impersonate =
                        Some((imp, "\"system:serviceaccounts\",\"system:authenticated\""));
                    r.reason = "";
                    write(b, t, &caller, &r, sess.addr, ua, None, seed);
                    return;
                }
            }
            r.reason = "RBAC: allowed by ClusterRoleBinding \\\"platform-devs\\\" of ClusterRole \\\"edit\\\" to Group \\\"platform-devs\\\"";
            write(b, t, &caller, &r, sess.addr, ua, object, seed);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn ci_request(
    rng: &mut super::rng::Rng,
    ns: &str,
    sa: &str,
    caller: &Caller<'_>,
    addr: u32,
    ua: &str,
    reason: &str,
    t: i64,
    seed: u64,
    b: &mut Vec<u8>,
) {
    let pick = rng.weighted(&[5, 5, 3, 2, 2]);
    let mut name = Vec::with_capacity(64);
    s(&mut name, sa);
    let mut r;
    match pick {
        0 | 1 => {
            r = Request::new(
                if pick == 0 { "get" } else { "patch" },
                "deployments",
                Some(ns),
            );
            r.api_group = "apps";
            r.name = Some(&name);
            r.reason = reason;
            let image = |b: &mut Vec<u8>| {
                s(b, "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"482915736014.dkr.ecr.us-east-1.amazonaws.com/");
                s(b, sa);
                b.push(b':');
                out::hex(b, seed ^ 0x1ae, 12);
                s(b, "\"}]}}}}");
            };
            let object: Body<'_> = if pick == 1 { Some(&image) } else { None };
            write(b, t, caller, &r, addr, ua, object, seed);
        }
        2 => {
            r = Request::new("get", "configmaps", Some(ns));
            s(&mut name, "-config");
            r.name = Some(&name);
            r.reason = reason;
            write(b, t, caller, &r, addr, ua, None, seed);
        }
        _ => {
            // Namespaced access for a team: a RoleBinding to `view` or `edit`.
            let role = if pick == 3 { "view" } else { "edit" };
            s(&mut name, "-team-");
            s(&mut name, role);
            r = Request::new("create", "rolebindings", Some(ns));
            r.api_group = "rbac.authorization.k8s.io";
            r.name = Some(&name);
            r.code = 201;
            r.reason = reason;
            let binding: &[u8] = &name;
            let object = |b: &mut Vec<u8>| {
                s(b, "{\"kind\":\"RoleBinding\",\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"metadata\":{\"name\":\"");
                b.extend_from_slice(binding);
                s(b, "\",\"namespace\":\"");
                s(b, ns);
                s(b, "\",\"creationTimestamp\":null},\"subjects\":[{\"kind\":\"Group\",\"apiGroup\":\"rbac.authorization.k8s.io\",\"name\":\"team-");
                s(b, ns);
                s(b, "\"}],\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"");
                s(b, role);
                s(b, "\"}}");
            };
            write(b, t, caller, &r, addr, ua, Some(&object), seed);
        }
    }
}

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
use super::rng::Rng;
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
    request_uri(b, req);
    s(b, "\",\"verb\":\"");
    s(b, req.verb);
    user(b, caller);
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
    object_ref(b, req);
    response_status(b, caller, req);
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

/// `requestURI`: the path of the request and the query kubectl or the client sends with it.
fn request_uri(b: &mut Vec<u8>, req: &Request<'_>) {
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
}

/// `user`: the caller's name, uid, groups and credential id (with the pod and node a bound
/// token was issued to).
fn user(b: &mut Vec<u8>, caller: &Caller<'_>) {
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
}

/// `objectRef`, opened after the user agent.
fn object_ref(b: &mut Vec<u8>, req: &Request<'_>) {
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
}

/// `responseStatus`: the code, and why a forbidden request was refused.
fn response_status(b: &mut Vec<u8>, caller: &Caller<'_>, req: &Request<'_>) {
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

// ------------------------------------------------------------------------------------------
// Request templates
// ------------------------------------------------------------------------------------------

/// The namespace a template names.
#[derive(Clone, Copy)]
pub enum Ns {
    /// The session's workload namespace ([`Scope::ns`]).
    Own,
    /// None: a cluster-scoped request.
    Cluster,
    Fixed(&'static str),
}

/// The object name a template names.
#[derive(Clone, Copy)]
pub enum Named {
    No,
    /// The session's service account name ([`Scope::sa`]) and a suffix.
    Sa(&'static str),
    /// The session's node ([`Scope::node`]).
    Node,
    Fixed(&'static str),
}

/// Whom the request impersonates.
#[derive(Clone, Copy)]
pub enum As {
    No,
    /// The session's service account ([`Scope`]).
    OwnSa,
    /// A username and groups (array contents).
    Fixed(&'static str, &'static str),
}

/// The `requestObject` logged with the request (`RequestResponse` level).
#[derive(Clone, Copy)]
pub enum Obj {
    No,
    /// kubectl's `rollout restart` patch of a deployment.
    Restart,
    /// CI's image update of the workload's deployment.
    Image,
    /// A RoleBinding of the workload's namespace's team to this cluster role.
    TeamBinding(&'static str),
    /// The web pod's service account bound to `cluster-admin`.
    ClusterAdmin,
}

/// One API request as data.
#[derive(Clone, Copy)]
pub struct Tpl {
    pub verb: &'static str,
    pub resource: &'static str,
    pub ns: Ns,
    pub name: Named,
    pub group: &'static str,
    pub sub: Option<&'static str>,
    pub code: u64,
    pub imp: As,
    pub obj: Obj,
}

/// A `verb` of `resource` in `ns`, allowed (200).
pub const fn req(verb: &'static str, resource: &'static str, ns: Ns) -> Tpl {
    Tpl {
        verb,
        resource,
        ns,
        name: Named::No,
        group: "",
        sub: None,
        code: 200,
        imp: As::No,
        obj: Obj::No,
    }
}

impl Tpl {
    pub const fn name(mut self, name: Named) -> Tpl {
        self.name = name;
        self
    }

    pub const fn group(mut self, group: &'static str) -> Tpl {
        self.group = group;
        self
    }

    pub const fn sub(mut self, sub: &'static str) -> Tpl {
        self.sub = Some(sub);
        self
    }

    pub const fn code(mut self, code: u64) -> Tpl {
        self.code = code;
        self
    }

    pub const fn imp(mut self, imp: As) -> Tpl {
        self.imp = imp;
        self
    }

    pub const fn obj(mut self, obj: Obj) -> Tpl {
        self.obj = obj;
        self
    }
}

/// What a template's names resolve to, and the event's time and seed.
pub struct Scope<'a> {
    pub ns: &'a str,
    pub sa: &'a str,
    pub node: u32,
    pub t: i64,
    pub seed: u64,
}

/// Who sends a request, from where, and the authorizer's reason for allowing it (a forbidden
/// request has none).
pub struct Sender<'a> {
    pub caller: Caller<'a>,
    pub addr: u32,
    pub ua: &'a str,
    pub reason: &'a str,
}

const COORDINATION: &str = "coordination.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const RBAC: &str = "rbac.authorization.k8s.io";
const POD_SUFFIX: &str = "-7d9f8b6c5-m8r2t";

/// Writes the audit event of `tpl` sent by `from`.
pub fn send(b: &mut Vec<u8>, tpl: &Tpl, scope: &Scope<'_>, from: &Sender<'_>) {
    let mut name = Vec::with_capacity(64);
    match tpl.name {
        Named::No => {}
        Named::Sa(suffix) => {
            s(&mut name, scope.sa);
            s(&mut name, suffix);
        }
        Named::Node => node_name(&mut name, scope.node),
        Named::Fixed(fixed) => s(&mut name, fixed),
    }
    let mut imp = Vec::new();
    let ns = match tpl.ns {
        Ns::Own => Some(scope.ns),
        Ns::Cluster => None,
        Ns::Fixed(ns) => Some(ns),
    };
    let mut r = Request::new(tpl.verb, tpl.resource, ns);
    r.name = (!matches!(tpl.name, Named::No)).then_some(&name[..]);
    r.api_group = tpl.group;
    r.subresource = tpl.sub;
    r.code = tpl.code;
    r.reason = if tpl.code == 403 { "" } else { from.reason };
    r.impersonate = match tpl.imp {
        As::No => None,
        As::OwnSa => {
            s(&mut imp, "system:serviceaccount:");
            s(&mut imp, scope.ns);
            imp.push(b':');
            s(&mut imp, scope.sa);
            Some((
                std::str::from_utf8(&imp).unwrap_or(""),
                "\"system:serviceaccounts\",\"system:authenticated\"",
            ))
        }
        As::Fixed(user, groups) => Some((user, groups)),
    };
    let object = |b: &mut Vec<u8>| request_object(b, tpl.obj, scope, &name);
    let object: Body<'_> = (!matches!(tpl.obj, Obj::No)).then_some(&object);
    write(
        b,
        scope.t,
        &from.caller,
        &r,
        from.addr,
        from.ua,
        object,
        scope.seed,
    );
}

fn request_object(b: &mut Vec<u8>, obj: Obj, scope: &Scope<'_>, name: &[u8]) {
    match obj {
        Obj::No => {}
        Obj::Restart => {
            s(
                b,
                "{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/restartedAt\":\"",
            );
            out::time_s(b, scope.t);
            s(b, "\"}},\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"resources\":{\"limits\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"requests\":{\"cpu\":\"250m\",\"memory\":\"512Mi\"}}}]}}}}");
        }
        Obj::Image => {
            s(b, "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"app\",\"image\":\"482915736014.dkr.ecr.us-east-1.amazonaws.com/");
            s(b, scope.sa);
            b.push(b':');
            out::hex(b, scope.seed ^ 0x1ae, 12);
            s(b, "\"}]}}}}");
        }
        Obj::TeamBinding(role) => {
            s(b, "{\"kind\":\"RoleBinding\",\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"metadata\":{\"name\":\"");
            b.extend_from_slice(name);
            s(b, "\",\"namespace\":\"");
            s(b, scope.ns);
            s(b, "\",\"creationTimestamp\":null},\"subjects\":[{\"kind\":\"Group\",\"apiGroup\":\"rbac.authorization.k8s.io\",\"name\":\"team-");
            s(b, scope.ns);
            s(b, "\"}],\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"");
            s(b, role);
            s(b, "\"}}");
        }
        Obj::ClusterAdmin => s(b, "{\"kind\":\"ClusterRoleBinding\",\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"metadata\":{\"name\":\"frontend-cluster-admin\",\"creationTimestamp\":null},\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"frontend\",\"namespace\":\"web\"}],\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":\"cluster-admin\"}}"),
    }
}

/// A persona's requests: each with how often it is made, against the others of its table.
type Table = [(u32, Tpl)];

/// Draws one request of `table` by weight.
fn pick<'t>(rng: &mut Rng, table: &'t Table) -> &'t Tpl {
    &table[rng.weighted_by(table, |(weight, _)| *weight)].1
}

// ------------------------------------------------------------------------------------------
// What each benign session does
// ------------------------------------------------------------------------------------------

/// A workload's pod: its config and credentials, its leader lease, its endpoints, events.
const POD: &Table = &[
    (
        30,
        req("get", "configmaps", Ns::Own).name(Named::Sa("-config")),
    ),
    (
        14,
        req("get", "secrets", Ns::Own).name(Named::Sa("-credentials")),
    ),
    (
        18,
        req("update", "leases", Ns::Own)
            .group(COORDINATION)
            .name(Named::Sa("-leader")),
    ),
    (
        12,
        req("get", "leases", Ns::Own)
            .group(COORDINATION)
            .name(Named::Sa("-leader")),
    ),
    (8, req("list", "endpointslices", Ns::Own).group(DISCOVERY)),
    (6, req("watch", "configmaps", Ns::Own)),
    (
        8,
        req("create", "events", Ns::Own)
            .group("events.k8s.io")
            .code(201),
    ),
];

/// CI deploying a workload: image updates, config reads, team RoleBindings to `view`/`edit`.
const CI: &Table = &[
    (
        5,
        req("get", "deployments", Ns::Own)
            .group("apps")
            .name(Named::Sa("")),
    ),
    (
        5,
        req("patch", "deployments", Ns::Own)
            .group("apps")
            .name(Named::Sa(""))
            .obj(Obj::Image),
    ),
    (
        3,
        req("get", "configmaps", Ns::Own).name(Named::Sa("-config")),
    ),
    (
        2,
        req("create", "rolebindings", Ns::Own)
            .group(RBAC)
            .name(Named::Sa("-team-view"))
            .code(201)
            .obj(Obj::TeamBinding("view")),
    ),
    (
        2,
        req("create", "rolebindings", Ns::Own)
            .group(RBAC)
            .name(Named::Sa("-team-edit"))
            .code(201)
            .obj(Obj::TeamBinding("edit")),
    ),
];

/// A controller: its leader lease, and watches over the cluster.
const CONTROLLER: &Table = &[
    (
        30,
        req("update", "leases", Ns::Own)
            .group(COORDINATION)
            .name(Named::Sa("")),
    ),
    (
        20,
        req("get", "leases", Ns::Own)
            .group(COORDINATION)
            .name(Named::Sa("")),
    ),
    (
        15,
        req("watch", "endpointslices", Ns::Cluster).group(DISCOVERY),
    ),
    (10, req("list", "pods", Ns::Cluster)),
    (10, req("list", "nodes", Ns::Cluster)),
    (8, req("watch", "services", Ns::Cluster)),
];

/// A kubelet: its node lease and status, tokens and config for the pods it runs.
const NODE: &Table = &[
    (
        35,
        req("update", "leases", Ns::Fixed("kube-node-lease"))
            .group(COORDINATION)
            .name(Named::Node),
    ),
    (
        15,
        req("patch", "nodes", Ns::Cluster)
            .sub("status")
            .name(Named::Node),
    ),
    (
        15,
        req("create", "serviceaccounts", Ns::Own)
            .sub("token")
            .name(Named::Sa(""))
            .code(201),
    ),
    (
        12,
        req("get", "configmaps", Ns::Own).name(Named::Sa("-config")),
    ),
    (
        10,
        req("get", "secrets", Ns::Own).name(Named::Sa("-credentials")),
    ),
    (13, req("get", "pods", Ns::Own).name(Named::Sa(POD_SUFFIX))),
];

/// A person with kubectl: pods, logs, exec, deployments (and restarts), and now and then a
/// check of what a service account may do, as that account (forbidden).
const PERSON: &Table = &[
    (20, req("list", "pods", Ns::Own)),
    (
        14,
        req("get", "pods", Ns::Own)
            .name(Named::Sa(POD_SUFFIX))
            .sub("log"),
    ),
    (
        10,
        req("get", "deployments", Ns::Own)
            .group("apps")
            .name(Named::Sa("")),
    ),
    (
        6,
        req("create", "pods", Ns::Own)
            .name(Named::Sa(POD_SUFFIX))
            .sub("exec")
            .code(101),
    ),
    (
        8,
        req("patch", "deployments", Ns::Own)
            .group("apps")
            .name(Named::Sa(""))
            .obj(Obj::Restart),
    ),
    (5, req("list", "namespaces", Ns::Cluster)),
    (8, req("list", "events", Ns::Own)),
    (4, req("list", "secrets", Ns::Own).code(403).imp(As::OwnSa)),
];

const SA_GROUPS_PREFIX: &str = "\"system:serviceaccounts\",\"system:serviceaccounts:";

/// A service account's `user`: its username, uid and groups.
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

/// Writes the next event of a benign Kubernetes session.
pub fn emit(env: &mut Env<'_>, sess: &mut Sess, t: i64, b: &mut Vec<u8>) {
    let mut user = Vec::with_capacity(64);
    let mut uid = Vec::with_capacity(40);
    let mut groups = Vec::with_capacity(96);
    let mut ua = Vec::with_capacity(64);
    let mut reason = Vec::with_capacity(128);
    sess.rotate(&mut env.rng);
    let seed = sess.key_seed(env.seed, 0x3000 + u64::from(sess.step));
    let cred = cred_of(env, sess);
    let mut scope = Scope {
        ns: "",
        sa: "",
        node: sess.who,
        t,
        seed,
    };
    let rng = &mut env.rng;
    let table = match sess.profile {
        Profile::PodToken | Profile::KubeCi => {
            (scope.ns, scope.sa) = WORKLOADS[sess.who as usize];
            if sess.profile == Profile::KubeCi {
                sa_caller("ci", "deployer", &mut user, &mut uid, &mut groups);
                s(&mut ua, KUBECTL_AGENTS[2]);
                s(&mut reason, "RBAC: allowed by RoleBinding \\\"deployer/");
                s(&mut reason, scope.ns);
                s(
                    &mut reason,
                    "\\\" of ClusterRole \\\"edit\\\" to ServiceAccount \\\"deployer/ci\\\"",
                );
                CI
            } else {
                sa_caller(scope.ns, scope.sa, &mut user, &mut uid, &mut groups);
                s(&mut ua, scope.sa);
                s(&mut ua, "/v2.14.0 (linux/amd64) kubernetes/v0.31.1");
                s(&mut reason, "RBAC: allowed by RoleBinding \\\"");
                s(&mut reason, scope.sa);
                s(&mut reason, "/");
                s(&mut reason, scope.ns);
                s(&mut reason, "\\\" of Role \\\"app\\\" to ServiceAccount");
                POD
            }
        }
        Profile::Controller => {
            let (ns, sa, agent) = CONTROLLERS[sess.who as usize];
            (scope.ns, scope.sa) = (ns, sa);
            sa_caller(ns, sa, &mut user, &mut uid, &mut groups);
            s(&mut ua, agent);
            s(&mut reason, "RBAC: allowed by ClusterRoleBinding");
            CONTROLLER
        }
        Profile::Node => {
            s(&mut user, "system:node:");
            node_name(&mut user, sess.who);
            s(&mut groups, "\"system:nodes\",\"system:authenticated\"");
            s(&mut ua, "kubelet/v1.31.1 (linux/amd64) kubernetes/948afe5");
            (scope.ns, scope.sa) = WORKLOADS[rng.below(WORKLOADS.len() as u64) as usize];
            NODE
        }
        _ => {
            // A person with kubectl.
            let person = &env.pools.people[sess.who as usize];
            s(&mut user, &person.login);
            s(&mut groups, "\"platform-devs\",\"system:authenticated\"");
            s(
                &mut ua,
                KUBECTL_AGENTS[(person.github_id % KUBECTL_AGENTS.len() as u64) as usize],
            );
            s(&mut reason, "RBAC: allowed by ClusterRoleBinding \\\"platform-devs\\\" of ClusterRole \\\"edit\\\" to Group \\\"platform-devs\\\"");
            (scope.ns, scope.sa) = WORKLOADS[sess.aux as usize];
            PERSON
        }
    };
    let from = Sender {
        caller: Caller {
            username: &user,
            uid: &uid,
            groups: &groups,
            cred,
        },
        addr: sess.addr,
        ua: std::str::from_utf8(&ua).unwrap_or(""),
        reason: std::str::from_utf8(&reason).unwrap_or(""),
    };
    send(b, pick(rng, table), &scope, &from);
}

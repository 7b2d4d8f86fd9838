//! What an AWS call hands to someone outside its own account, and how many items a batch call
//! touches — read from the request parameters of the few calls that carry them.
//!
//! A rule cannot say "an account other than the caller's" inside a policy document, a launch
//! permission or a snapshot attribute, so the CloudTrail adapter says it, as scopes:
//!
//! - `grant:account:<id>` — the call gives an account other than the caller's access (an AMI,
//!   EBS or RDS snapshot shared with it; a role trust policy, resource policy or Lambda
//!   permission naming it);
//! - `grant:public` — the same given to everyone (`*`, the `all` group);
//! - `ingress:world:<protocol>:<ports>` — a security group opened to every address (a CIDR of
//!   prefix length 0): `ingress:world:tcp:22`, `ingress:world:tcp:8000-8100`,
//!   `ingress:world:all:all` (every protocol and port).
//!
//! Service principals (`ec2.amazonaws.com`) and the caller's own account are not grants to an
//! outsider. Only the calls listed in [`GRANT_CALLS`] are read, so other records pay nothing.

use serde_json::Value;

/// Calls whose request parameters can hand access outside the account.
pub const GRANT_CALLS: &[&str] = &[
    "ModifyImageAttribute",
    "ModifySnapshotAttribute",
    "ModifyDBSnapshotAttribute",
    "ModifyDBClusterSnapshotAttribute",
    "UpdateAssumeRolePolicy",
    "CreateRole",
    "PutBucketPolicy",
    "PutKeyPolicy",
    "PutResourcePolicy",
    "AddPermission20150331v2",
    "AddPermission20150331",
    "AddPermission",
    "AddLayerVersionPermission20181031",
    "AddLayerVersionPermission",
    "AuthorizeSecurityGroupIngress",
];

/// Whether `event_name` is one whose parameters [`grants`] reads.
pub fn is_grant_call(event_name: &str) -> bool {
    GRANT_CALLS.contains(&event_name)
}

/// The outsiders a call's request parameters give access to, as scopes (module docs).
pub fn grants(event_name: &str, params: &Value, own_account: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut principal = |p: &str| {
        if let Some(scope) = outsider(p, own_account) {
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
    };
    match event_name {
        // EC2 launch and volume permissions: {"add": {"items": [{"userId"|"group": …}]}}.
        "ModifyImageAttribute" | "ModifySnapshotAttribute" => {
            for key in ["launchPermission", "createVolumePermission"] {
                for item in items(&params[key]["add"]["items"]) {
                    if let Some(id) = item["userId"].as_str() {
                        principal(id);
                    }
                    if item["group"].as_str() == Some("all") {
                        principal("*");
                    }
                }
            }
        }
        // RDS: attributeName `restore`, valuesToAdd account ids or `all`.
        "ModifyDBSnapshotAttribute" | "ModifyDBClusterSnapshotAttribute"
            if params["attributeName"].as_str() == Some("restore") =>
        {
            for value in items(&params["valuesToAdd"]) {
                if let Some(v) = value.as_str() {
                    principal(if v == "all" { "*" } else { v });
                }
            }
        }
        "UpdateAssumeRolePolicy"
        | "CreateRole"
        | "PutBucketPolicy"
        | "PutKeyPolicy"
        | "PutResourcePolicy" => {
            let document = [
                "policyDocument",
                "assumeRolePolicyDocument",
                "bucketPolicy",
                "policy",
                "resourcePolicy",
            ]
            .iter()
            .map(|k| &params[*k])
            .find(|v| !v.is_null());
            if let Some(document) = document.and_then(policy) {
                for p in allowed_principals(&document) {
                    principal(&p);
                }
            }
        }
        // Lambda function and layer permissions: `principal` is an account, an ARN, `*` or a
        // service; a layer's `organizationId` limits `*` to an organization (not an outsider).
        _ if event_name.starts_with("AddPermission")
            || event_name.starts_with("AddLayerVersionPermission") =>
        {
            if let Some(p) = params["principal"].as_str() {
                let scoped = params["organizationId"].as_str().is_some()
                    || params["sourceAccount"].as_str().is_some()
                    || params["principalOrgID"].as_str().is_some();
                if !(p == "*" && scoped) {
                    principal(p);
                }
            }
        }
        "AuthorizeSecurityGroupIngress" => return world_ingress(params),
        _ => {}
    }
    out
}

/// The items a batch call touches, where its request lists them: secrets of
/// `BatchGetSecretValue` (by id; a filtered call's items are not logged), parameters of SSM
/// `GetParameters`, objects of S3 `DeleteObjects`.
pub fn batch_items(event_name: &str, params: &Value) -> Option<u64> {
    let list = match event_name {
        "BatchGetSecretValue" => &params["secretIdList"],
        "GetParameters" => &params["names"],
        "DeleteObjects" => &params["delete"]["Object"],
        _ => return None,
    };
    list.as_array().map(|items| items.len() as u64)
}

/// An array's items, or the value itself when a single item was written without the array.
fn items(value: &Value) -> impl Iterator<Item = &Value> {
    let (many, one) = match value {
        Value::Array(items) => (items.as_slice(), None),
        Value::Null => (&[][..], None),
        other => (&[][..], Some(other)),
    };
    many.iter().chain(one)
}

/// A policy document, written as an object or as a JSON string of one.
fn policy(value: &Value) -> Option<Value> {
    match value {
        Value::String(text) => serde_json::from_str(text).ok(),
        Value::Object(_) => Some(value.clone()),
        _ => None,
    }
}

/// The AWS principals (and `*`) that `Allow` statements of a policy name.
fn allowed_principals(document: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for statement in items(&document["Statement"]) {
        if statement["Effect"].as_str() != Some("Allow") {
            continue;
        }
        match &statement["Principal"] {
            Value::String(p) => out.push(p.clone()),
            Value::Object(map) => {
                for (kind, value) in map {
                    if kind == "AWS" || kind == "CanonicalUser" {
                        out.extend(items(value).filter_map(|v| v.as_str()).map(str::to_owned));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// The scope for a principal outside `own_account`: an account id, an ARN in another account,
/// or `*`. Service principals, own-account principals and unreadable ones give none.
fn outsider(principal: &str, own_account: Option<&str>) -> Option<String> {
    if principal == "*" {
        return Some("grant:public".to_owned());
    }
    let account = if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        principal
    } else if let Some(rest) = principal.strip_prefix("arn:") {
        // arn:partition:service:region:account:resource
        let account = rest.split(':').nth(3)?;
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        account
    } else {
        return None;
    };
    (Some(account) != own_account).then(|| format!("grant:account:{account}"))
}

/// `ingress:world:<protocol>:<ports>` for each ingress rule open to every address.
fn world_ingress(params: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut rule = |protocol: &Value, from: &Value, to: &Value, cidr: &str| {
        let world = cidr
            .rsplit_once('/')
            .is_some_and(|(_, prefix)| prefix.trim() == "0");
        if !world {
            return;
        }
        let protocol = match protocol {
            Value::String(p) if p != "-1" => p.to_ascii_lowercase(),
            Value::Number(n) if n.as_i64() != Some(-1) => n.to_string(),
            _ => "all".to_owned(),
        };
        let ports = match (from.as_i64(), to.as_i64()) {
            _ if protocol == "all" => "all".to_owned(),
            (Some(a), Some(b)) if a == b => a.to_string(),
            (Some(a), Some(b)) if a >= 0 && b >= 0 => format!("{a}-{b}"),
            _ => "all".to_owned(),
        };
        let scope = format!("ingress:world:{protocol}:{ports}");
        if !out.contains(&scope) {
            out.push(scope);
        }
    };
    // The older flat form: cidrIp, ipProtocol, fromPort, toPort.
    if let Some(cidr) = params["cidrIp"].as_str() {
        rule(
            &params["ipProtocol"],
            &params["fromPort"],
            &params["toPort"],
            cidr,
        );
    }
    for permission in items(&params["ipPermissions"]["items"]) {
        let ranges = items(&permission["ipRanges"]["items"])
            .filter_map(|r| r["cidrIp"].as_str())
            .chain(
                items(&permission["ipv6Ranges"]["items"]).filter_map(|r| r["cidrIpv6"].as_str()),
            );
        for cidr in ranges {
            rule(
                &permission["ipProtocol"],
                &permission["fromPort"],
                &permission["toPort"],
                cidr,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OWN: Option<&str> = Some("111122223333");

    #[test]
    fn sharing_with_another_account_or_everyone() {
        let ami = json!({"launchPermission": {"add": {"items": [{"userId": "846424999548"}, {"userId": "111122223333"}]}}});
        assert_eq!(
            grants("ModifyImageAttribute", &ami, OWN),
            ["grant:account:846424999548"]
        );
        let public = json!({"createVolumePermission": {"add": {"items": {"group": "all"}}}});
        assert_eq!(
            grants("ModifySnapshotAttribute", &public, OWN),
            ["grant:public"]
        );
        let rds = json!({"attributeName": "restore", "valuesToAdd": ["503161813013", "all"]});
        assert_eq!(
            grants("ModifyDBSnapshotAttribute", &rds, OWN),
            ["grant:account:503161813013", "grant:public"]
        );
        let removal =
            json!({"launchPermission": {"remove": {"items": [{"userId": "846424999548"}]}}});
        assert!(grants("ModifyImageAttribute", &removal, OWN).is_empty());
        // RDS shares only through `restore`; another attribute name is no grant.
        let other = json!({"attributeName": "copy", "valuesToAdd": ["503161813013"]});
        assert!(grants("ModifyDBSnapshotAttribute", &other, OWN).is_empty());
    }

    #[test]
    fn an_outsider_is_twelve_digits_or_an_arn_in_another_account() {
        assert_eq!(
            outsider("193672423079", OWN).as_deref(),
            Some("grant:account:193672423079")
        );
        assert_eq!(
            outsider("arn:aws:iam::193672423079:role/x", OWN).as_deref(),
            Some("grant:account:193672423079")
        );
        for principal in [
            "111122223333",
            "1936724230",
            "ec2.internal",
            "arn:aws:s3:::a-bucket",
            "arn:aws:iam::19367:role/x",
            "arn:aws:iam::19367242307x:role/x",
            "arn:aws",
        ] {
            assert_eq!(outsider(principal, OWN), None, "{principal}");
        }
    }

    #[test]
    fn only_the_listed_calls_are_grant_calls() {
        for name in GRANT_CALLS {
            assert!(is_grant_call(name), "{name}");
        }
        for name in [
            "GetObject",
            "AssumeRole",
            "DeleteObjects",
            "PutBucketAcl",
            "",
        ] {
            assert!(!is_grant_call(name), "{name}");
        }
    }

    #[test]
    fn trust_policies_name_outside_accounts_not_services_or_own_roles() {
        let doc = r#"{"Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::111122223333:role/ci", "arn:aws:iam::193672423079:root"]}},
            {"Effect": "Deny", "Principal": "*"}]}"#;
        let params = json!({"policyDocument": doc, "roleName": "r"});
        assert_eq!(
            grants("UpdateAssumeRolePolicy", &params, OWN),
            ["grant:account:193672423079"]
        );
        let own_only = json!({"policyDocument": {"Statement": {"Effect": "Allow", "Principal": {"AWS": "111122223333"}}}});
        assert!(grants("UpdateAssumeRolePolicy", &own_only, OWN).is_empty());
        // Everyone, as a bare `*`; an identity provider is no account granted.
        let public = json!({"bucketPolicy": {"Statement": {"Effect": "Allow", "Principal": "*"}}});
        assert_eq!(grants("PutBucketPolicy", &public, OWN), ["grant:public"]);
        let federated = json!({"policyDocument": {"Statement": {"Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::193672423079:oidc-provider/token.actions.githubusercontent.com"}}}});
        assert!(grants("CreateRole", &federated, OWN).is_empty());
        // A document written as an object, not a string of one.
        let object = json!({"bucketPolicy": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::193672423079:root"}}]}});
        assert_eq!(
            grants("PutBucketPolicy", &object, OWN),
            ["grant:account:193672423079"]
        );
    }

    #[test]
    fn lambda_permissions() {
        let anyone = json!({"principal": "*", "action": "lambda:InvokeFunction"});
        assert_eq!(
            grants("AddPermission20150331v2", &anyone, OWN),
            ["grant:public"]
        );
        let service = json!({"principal": "s3.amazonaws.com", "sourceAccount": "111122223333"});
        assert!(grants("AddPermission20150331v2", &service, OWN).is_empty());
        let org = json!({"principal": "*", "organizationId": "o-abc"});
        assert!(grants("AddLayerVersionPermission20181031", &org, OWN).is_empty());
        // Anyone, but only on behalf of one account or organization: not public.
        for scope in [
            json!({"principal": "*", "sourceAccount": "111122223333"}),
            json!({"principal": "*", "principalOrgID": "o-abc"}),
        ] {
            assert!(
                grants("AddPermission20150331v2", &scope, OWN).is_empty(),
                "{scope}"
            );
        }
    }

    #[test]
    fn security_group_ingress_open_to_every_address() {
        let flat = json!({"cidrIp": "208.236.235.254/0", "fromPort": 22, "toPort": 22, "ipProtocol": "tcp"});
        assert_eq!(
            grants("AuthorizeSecurityGroupIngress", &flat, OWN),
            ["ingress:world:tcp:22"]
        );
        let nested = json!({"ipPermissions": {"items": [
            {"ipProtocol": "-1", "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}},
            {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "ipv6Ranges": {"items": [{"cidrIpv6": "::/0"}]}},
            {"ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}});
        assert_eq!(
            grants("AuthorizeSecurityGroupIngress", &nested, OWN),
            ["ingress:world:all:all", "ingress:world:tcp:443"]
        );
        // Protocols written as numbers (6 is TCP, -1 every protocol), and every protocol's
        // ports, whatever is written for them, are all ports.
        for (params, scope) in [
            (
                json!({"cidrIp": "0.0.0.0/0", "ipProtocol": 6, "fromPort": 22, "toPort": 22}),
                "ingress:world:6:22",
            ),
            (
                json!({"cidrIp": "0.0.0.0/0", "ipProtocol": -1}),
                "ingress:world:all:all",
            ),
            (
                json!({"cidrIp": "0.0.0.0/0", "ipProtocol": "-1", "fromPort": -1, "toPort": -1}),
                "ingress:world:all:all",
            ),
            (
                json!({"cidrIp": "0.0.0.0/0", "ipProtocol": "-1", "fromPort": 0, "toPort": 65535}),
                "ingress:world:all:all",
            ),
            // A range; ICMP's type and code in the port fields, -1 meaning any.
            (
                json!({"cidrIp": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 0, "toPort": 65535}),
                "ingress:world:tcp:0-65535",
            ),
            (
                json!({"cidrIp": "0.0.0.0/0", "ipProtocol": "tcp", "fromPort": 8000, "toPort": 8100}),
                "ingress:world:tcp:8000-8100",
            ),
            (
                json!({"cidrIp": "0.0.0.0/0", "ipProtocol": "icmp", "fromPort": 8, "toPort": -1}),
                "ingress:world:icmp:all",
            ),
            (
                json!({"cidrIp": "0.0.0.0/0", "ipProtocol": "icmp", "fromPort": -1, "toPort": 0}),
                "ingress:world:icmp:all",
            ),
        ] {
            assert_eq!(
                grants("AuthorizeSecurityGroupIngress", &params, OWN),
                [scope],
                "{params}"
            );
        }
    }

    #[test]
    fn batch_calls_count_their_listed_items() {
        let ids = json!({"secretIdList": ["a", "b", "c"]});
        assert_eq!(batch_items("BatchGetSecretValue", &ids), Some(3));
        let filtered = json!({"filters": [{"key": "tag-key", "values": ["x"]}]});
        assert_eq!(batch_items("BatchGetSecretValue", &filtered), None);
        assert_eq!(
            batch_items("GetParameters", &json!({"names": ["/a", "/b"]})),
            Some(2)
        );
        assert_eq!(batch_items("GetSecretValue", &ids), None);
    }
}

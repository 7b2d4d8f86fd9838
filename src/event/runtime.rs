//! The runtime a client runs on, read from its user agent: the software family (`aws-sdk-java`,
//! `Boto3`, `aws-cli`, `kubectl`, `Terraform`, `curl`, `browser` …) without its version, so a
//! rule can tell a workload's SDK from a person's tools and an SDK upgrade from a new program.
//! Rules read it as `client.runtime`.
//!
//! The family is the name of the first product token (`name/version`) of the user agent, with
//! the tokens that only wrap or describe another left out (`APN/1.0 HashiCorp/1.0` before
//! `Terraform/1.9.5`; `ua/`, `os/`, `lang/`, `md/`, `api/`, `cfg/`, `exec-env/` after it) and a
//! major-version suffix dropped (`aws-sdk-go-v2` is `aws-sdk-go`). Two forms are named by
//! kind: a browser (`Mozilla/…`) is `browser`, and a call an AWS service made on the session's
//! behalf (a user agent that is a service's host name, `athena.amazonaws.com`, or CloudTrail's
//! `AWS Internal`) is `aws-service`. Brackets CloudTrail puts around some user agents
//! (`[rclone/v1.68.1]`) are left out. No user agent, no runtime.

/// Tokens that describe the platform or wrap another product, never the client itself.
const NOT_A_CLIENT: [&str; 9] = [
    "APN",
    "HashiCorp",
    "ua",
    "os",
    "lang",
    "md",
    "api",
    "cfg",
    "exec-env",
];

/// The runtime family of `user_agent`; a slice of it, or a name of this module's.
pub fn runtime(user_agent: &str) -> Option<&str> {
    let ua = user_agent.trim();
    let ua = ua
        .strip_prefix('[')
        .and_then(|u| u.strip_suffix(']'))
        .unwrap_or(ua)
        .trim();
    let first = ua.split_ascii_whitespace().next()?;
    if ua == "AWS Internal" || first.ends_with(".amazonaws.com") {
        return Some("aws-service");
    }
    if first.starts_with("Mozilla/") {
        return Some("browser");
    }
    let product = ua
        .split_ascii_whitespace()
        .filter(|token| !token.starts_with('('))
        .map(|token| token.split('/').next().unwrap_or(token))
        .find(|name| {
            !name.is_empty()
                && !NOT_A_CLIENT
                    .iter()
                    .any(|skip| name.eq_ignore_ascii_case(skip))
        })
        .unwrap_or(first);
    Some(without_major_version(product))
}

/// `aws-sdk-go-v2` → `aws-sdk-go`: a suffix `-v<digits>` names a major version of one family.
fn without_major_version(name: &str) -> &str {
    match name.rsplit_once("-v") {
        Some((family, major))
            if !family.is_empty()
                && !major.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit()) =>
        {
            family
        }
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::runtime;

    #[test]
    fn families_of_the_clients_the_vendors_log() {
        let cases = [
            ("aws-cli/2.15.40 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/s3.ls", "aws-cli"),
            ("Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#6.1.0-25-amd64 Botocore/1.35.36", "Boto3"),
            ("aws-sdk-go-v2/1.30.5 os/linux lang/go#1.22.7 md/GOOS#linux api/dynamodb#1.34.9", "aws-sdk-go"),
            ("aws-sdk-go/1.55.5 (go1.22.7; linux; amd64)", "aws-sdk-go"),
            ("aws-sdk-java/2.28.16 Linux/5.10.226 OpenJDK_64-Bit_Server_VM/21.0.4+7-LTS", "aws-sdk-java"),
            ("APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0", "Terraform"),
            ("[rclone/v1.68.1]", "rclone"),
            ("kubectl/v1.30.4 (linux/amd64) kubernetes/a51b3b7", "kubectl"),
            ("payments-api/v2.14.0 (linux/amd64) kubernetes/v0.31.1", "payments-api"),
            ("curl/8.4.0", "curl"),
            ("python-requests/2.31.0", "python-requests"),
            ("Go-http-client/1.1", "Go-http-client"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36", "browser"),
            ("athena.amazonaws.com", "aws-service"),
            ("AWS Internal", "aws-service"),
            ("Okta-Integrations", "Okta-Integrations"),
        ];
        for (ua, family) in cases {
            assert_eq!(runtime(ua), Some(family), "{ua}");
        }
    }

    #[test]
    fn versions_and_upgrades_inside_a_family_are_one_runtime() {
        assert_eq!(
            runtime("aws-sdk-java/2.28.16 Linux/5.10"),
            runtime("aws-sdk-java/2.29.1 Linux/6.1")
        );
        assert_eq!(
            runtime("kubectl/v1.30.4 (linux/amd64)"),
            runtime("kubectl/v1.31.1 (darwin/arm64)")
        );
        assert_ne!(runtime("aws-cli/2.15.40"), runtime("aws-sdk-java/2.28.16"));
    }

    #[test]
    fn no_user_agent_no_runtime() {
        assert_eq!(runtime(""), None);
        assert_eq!(runtime("   "), None);
        assert_eq!(runtime("[]"), None);
        // A name ending like a version suffix but not one stays whole.
        assert_eq!(runtime("tool-v/1"), Some("tool-v"));
        assert_eq!(runtime("-v2/1"), Some("-v2"));
    }
}

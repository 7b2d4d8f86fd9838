//! The generator's cast, built once per run: people (each with an Okta user, a GitHub login, a
//! home network and an office), services (each with its roles, secrets, buckets, tables and
//! queues), networks with their AS and geography, user agents, repositories, Okta apps and
//! groups, and the AWS accounts of one organisation.
//!
//! Names follow the scenario fixtures' company (northwind): accounts 482915736014
//! (production), 215836470925 (shared services), 615482093771 (a member account). Addresses:
//! 198.51.100.0/24 is the office egress, 203.0.113.0/24 attacker infrastructure, 10.0.0.0/8
//! inside VPCs and clusters; home networks come from the address blocks of real access ISPs,
//! so an Okta event's AS, ISP and city agree with its address.

use super::out::{self, AWS_ALPHABET, BASE62};
use super::rng::{hash2, hash_str, Rng};

pub const ACCOUNT_PROD: &str = "482915736014";
pub const ACCOUNT_SHARED: &str = "215836470925";
/// Member accounts the security scanner walks through.
pub const MEMBER_ACCOUNTS: &[&str] = &[
    "615482093771",
    "730335218216",
    "558604190273",
    "903661407258",
];
pub const ORG: &str = "northwind-labs";
pub const DOMAIN: &str = "northwind.example";
pub const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-1",
    "us-east-1",
    "us-west-2",
    "eu-west-1",
];

/// A network a request comes from: an address block and what Okta's geolocation says about it.
pub struct Place {
    /// First two octets; the third is chosen per person (homes) or fixed (office).
    pub a: u8,
    pub b_lo: u8,
    pub b_hi: u8,
    pub asn: u32,
    pub as_org: &'static str,
    pub isp: &'static str,
    pub domain: &'static str,
    pub city: &'static str,
    pub state: &'static str,
    pub country: &'static str,
    pub postal: &'static str,
    /// Latitude and longitude in 1/10000 degrees.
    pub lat: i64,
    pub lon: i64,
    pub proxy: bool,
}

const fn place(
    a: u8,
    b: (u8, u8),
    asn: u32,
    org: (&'static str, &'static str, &'static str),
    geo: (&'static str, &'static str, &'static str, &'static str),
    lat: i64,
    lon: i64,
) -> Place {
    Place {
        a,
        b_lo: b.0,
        b_hi: b.1,
        asn,
        as_org: org.0,
        isp: org.1,
        domain: org.2,
        city: geo.0,
        state: geo.1,
        country: geo.2,
        postal: geo.3,
        lat,
        lon,
        proxy: false,
    }
}

const ATT: (&str, &str, &str) = ("at&t services, inc.", "at&t services  inc.", "att.net");
const COMCAST: (&str, &str, &str) = (
    "comcast cable communications, llc",
    "comcast cable communications  llc",
    "comcast.net",
);
const VERIZON: (&str, &str, &str) = ("verizon business", "verizon business", "verizon.net");
const CHARTER: (&str, &str, &str) = (
    "charter communications inc",
    "charter communications inc",
    "spectrum.com",
);

/// Index of the office egress in [`PLACES`].
pub const OFFICE: usize = 0;
/// Index of the CI runners' NAT in [`PLACES`].
pub const CI_NAT: usize = 1;

/// Networks people and machines work from. Office first, then the CI NAT, then homes.
pub static PLACES: &[Place] = &[
    // Office egress: 198.51.100.0/24, a NAT pool of a few addresses.
    place(
        198,
        (51, 51),
        7018,
        ATT,
        ("Austin", "Texas", "United States", "78701"),
        302_672,
        -977_431,
    ),
    // Self-hosted CI runners behind one NAT: 192.0.2.0/24.
    place(
        192,
        (0, 0),
        7018,
        ATT,
        ("Austin", "Texas", "United States", "78701"),
        302_672,
        -977_431,
    ),
    place(
        73,
        (0, 255),
        7922,
        COMCAST,
        ("Denver", "Colorado", "United States", "80202"),
        397_392,
        -1_049_903,
    ),
    place(
        98,
        (192, 255),
        7922,
        COMCAST,
        ("Seattle", "Washington", "United States", "98101"),
        476_062,
        -1_223_321,
    ),
    place(
        24,
        (0, 31),
        7922,
        COMCAST,
        ("Chicago", "Illinois", "United States", "60601"),
        418_781,
        -876_298,
    ),
    place(
        99,
        (0, 127),
        7018,
        ATT,
        ("Dallas", "Texas", "United States", "75201"),
        327_767,
        -967_970,
    ),
    place(
        107,
        (192, 223),
        7018,
        ATT,
        ("Atlanta", "Georgia", "United States", "30303"),
        337_490,
        -843_880,
    ),
    place(
        71,
        (160, 191),
        701,
        VERIZON,
        ("New York", "New York", "United States", "10001"),
        407_128,
        -740_060,
    ),
    place(
        108,
        (0, 63),
        701,
        VERIZON,
        ("Boston", "Massachusetts", "United States", "02108"),
        423_601,
        -710_589,
    ),
    place(
        47,
        (144, 159),
        20115,
        CHARTER,
        ("Los Angeles", "California", "United States", "90012"),
        340_522,
        -1_182_437,
    ),
    place(
        86,
        (128, 191),
        2856,
        (
            "british telecommunications plc",
            "british telecommunications plc",
            "bt.com",
        ),
        ("London", "England", "United Kingdom", "EC1A"),
        515_074,
        -1_278,
    ),
    place(
        93,
        (192, 255),
        3320,
        ("deutsche telekom ag", "deutsche telekom ag", "telekom.de"),
        ("Berlin", "Land Berlin", "Germany", "10115"),
        525_200,
        134_050,
    ),
    place(
        90,
        (0, 63),
        3215,
        ("orange s.a.", "orange s.a.", "orange.fr"),
        ("Paris", "Ile-de-France", "France", "75001"),
        488_566,
        23_522,
    ),
    place(
        99,
        (224, 255),
        812,
        (
            "rogers communications canada inc.",
            "rogers communications canada inc.",
            "rogers.com",
        ),
        ("Toronto", "Ontario", "Canada", "M5H"),
        436_532,
        -793_832,
    ),
];

/// Where attackers come from in Okta attacks (address block 203.0.113.0/24 unless noted).
pub static ATTACK_PLACES: &[Place] = &[
    Place {
        proxy: true,
        ..place(
            203,
            (0, 0),
            9009,
            ("m247 europe srl", "m247 europe srl", "m247.com"),
            ("Bucharest", "Bucuresti", "Romania", "030167"),
            444_268,
            261_025,
        )
    },
    Place {
        proxy: true,
        ..place(
            203,
            (0, 0),
            9009,
            ("m247 ltd", "m247 ltd", "m247.com"),
            ("Dallas", "Texas", "United States", "75201"),
            327_767,
            -967_970,
        )
    },
];

/// One AS that spans countries (Cloudflare WARP): a session set up through it in one country
/// and replayed through it from another keeps its AS but changes country.
pub static WARP: &[Place] = &[
    place(
        104,
        (28, 28),
        13335,
        ("cloudflare, inc.", "cloudflare  inc.", "cloudflare.com"),
        ("Dallas", "Texas", "United States", "75201"),
        327_767,
        -967_970,
    ),
    place(
        104,
        (28, 28),
        13335,
        ("cloudflare, inc.", "cloudflare  inc.", "cloudflare.com"),
        ("Bucharest", "Bucuresti", "Romania", "030167"),
        444_268,
        261_025,
    ),
];

/// The /24 network of a place for a given selector (a person, a session).
pub fn net24(place: &Place, selector: u64) -> u32 {
    let span = u64::from(place.b_hi - place.b_lo) + 1;
    let b = place.b_lo as u64 + hash2(selector, 0xb) % span;
    let c = match (place.a, place.b_lo) {
        (198, 51) => 100,
        (192, 0) => 2,
        (203, 0) => 113,
        _ => hash2(selector, 0xc) % 256,
    };
    (u32::from(place.a) << 24) | ((b as u32) << 16) | ((c as u32) << 8)
}

/// A GitHub-hosted runner's address (Azure): a fresh /24 per job.
pub fn runner_ip(selector: u64) -> u32 {
    const BLOCKS: [u32; 4] = [
        20 << 24 | 42 << 16,
        4 << 24 | 246 << 16,
        52 << 24 | 234 << 16,
        40 << 24 | 84 << 16,
    ];
    let block = BLOCKS[(hash2(selector, 1) % 4) as usize];
    block | ((hash2(selector, 2) % 256) as u32) << 8 | (1 + hash2(selector, 3) % 254) as u32
}

/// An address inside a VPC or cluster subnet.
pub fn private_ip(second: u8, selector: u64) -> u32 {
    (10 << 24)
        | (u32::from(second) << 16)
        | (((hash2(selector, 4) % 64) as u32) << 8)
        | (2 + hash2(selector, 5) % 250) as u32
}

// ------------------------------------------------------------------------------------------
// People
// ------------------------------------------------------------------------------------------

const FIRST: &[&str] = &[
    "alice", "bruno", "chen", "dana", "elif", "farah", "gustavo", "hana", "ivan", "jun", "kamil",
    "lena", "marta", "nadia", "omar", "priya", "quinn", "rosa", "sam", "tomas", "uma", "victor",
    "wei", "ximena", "yusuf", "zoe", "amara", "bjorn", "carmen", "dmitri", "esther", "femi",
    "grace", "hiro", "ines", "jonas", "kofi", "laila", "mateo", "noor",
];
const LAST: &[&str] = &[
    "nguyen", "silva", "okafor", "patel", "kowalski", "haddad", "tanaka", "fischer", "garcia",
    "mensah", "novak", "olsen", "ramos", "schmidt", "walsh", "yilmaz", "becker", "chen", "dubois",
    "eriksen", "ferreira", "gupta", "hughes", "ivanova", "jensen", "kim", "lopez", "moreau",
    "nair", "obi", "park", "quist", "rossi", "sato", "tran", "usman", "varga", "weber", "xu",
    "zimmer",
];

pub struct Person {
    /// `alice.nguyen`, unique.
    pub login: String,
    pub display: String,
    /// Okta user id (`00u…`).
    pub okta_id: String,
    /// GitHub login (`alice-nguyen`).
    pub github: String,
    pub github_id: u64,
    /// Home network (index into [`PLACES`]) and its /24.
    pub home: usize,
    pub home_net: u32,
    /// Works from the office (otherwise from home) — fixed per person, so sessions keyed by
    /// the person (GitHub web) keep one network.
    pub in_office: bool,
    pub browser: usize,
    pub cli: usize,
}

/// A non-admin team role for people's AWS SSO sessions.
pub const SSO_ROLES: &[&str] = &[
    "AWSReservedSSO_Developer_4b1e9a7c3d2f5e60",
    "AWSReservedSSO_DataAnalyst_7c2a9e4f1b3d5a60",
    "AWSReservedSSO_ReadOnly_2f8d6c4a0e1b3957",
    "AWSReservedSSO_DataEngineer_9d3b7f1e5a2c4860",
];
pub const SSO_ADMIN_ROLE: &str = "AWSReservedSSO_AdministratorAccess_1a6f3c9e7b2d4058";

// ------------------------------------------------------------------------------------------
// Services
// ------------------------------------------------------------------------------------------

const SERVICE_NAMES: &[&str] = &[
    "orders-api",
    "payments-worker",
    "inventory-sync",
    "billing-export",
    "search-indexer",
    "notifications",
    "image-resize",
    "fraud-scorer",
    "ledger",
    "catalog",
    "checkout",
    "shipping-tracker",
    "recommendations",
    "auth-gateway",
    "reporting",
    "audit-archiver",
    "pricing",
    "customer-profile",
    "returns",
    "loyalty",
    "email-sender",
    "pdf-renderer",
    "geo-lookup",
    "tax-calculator",
    "webhooks",
    "session-store",
    "feature-flags",
    "metrics-relay",
    "data-sync",
    "order-events",
];

/// How a service runs, which shapes its role name, session names and user agent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Ecs,
    Lambda,
    Ec2,
}

pub struct Service {
    pub name: &'static str,
    pub runtime: Runtime,
    /// IAM role name (`orders-api-task`, `lambda-image-resize`, `etl-…-instance`).
    pub role: String,
    pub role_id: String,
    pub account: &'static str,
    /// The few secrets it reads again and again, by name.
    pub secrets: Vec<String>,
    pub bucket: String,
    pub table: String,
    pub queue: String,
    pub ua: &'static str,
    /// Second octet of its VPC (10.x.0.0/16).
    pub vpc: u8,
}

pub const SDK_AGENTS: &[&str] = &[
    "aws-sdk-java/2.28.16 Linux/5.10.226-214.880.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.4+7-LTS Java/21.0.4 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
    "aws-sdk-go/1.55.5 (go1.22.7; linux; amd64)",
    "aws-sdk-nodejs/3.658.1 linux/v20.17.0 exec-env/AWS_Lambda_nodejs20.x",
    "aws-sdk-go-v2/1.30.5 os/linux lang/go#1.22.7 md/GOOS#linux md/GOARCH#amd64 api/dynamodb#1.34.9",
    "Boto3/1.35.24 md/Botocore#1.35.24 ua/2.0 os/linux#5.10.225-213.878.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.24",
    "aws-sdk-nodejs/3.658.1 linux/v20.17.0 exec-env/AWS_ECS_FARGATE api/secrets-manager#3.658.1",
    "aws-sdk-dotnet-coreclr/3.7.400.12 .NET_Core/8.0.8 OS/Linux_5.10.225-213.878.amzn2.x86_64 ClientAsync",
];

pub const CLI_AGENTS: &[&str] = &[
    "aws-cli/2.17.43 md/awscrt#0.21.2 ua/2.0 os/macos#23.6.0 md/arch#arm64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off",
    "aws-cli/2.18.2 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-45-generic md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24",
    "Boto3/1.35.30 md/Botocore#1.35.30 ua/2.0 os/macos#24.0.0 md/arch#arm64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.30",
    "APN/1.0 HashiCorp/1.0 Terraform/1.9.6 (+https://www.terraform.io) terraform-provider-aws/5.69.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.31.0 ua/2.1 os/macos lang/go#1.22.7 md/GOOS#darwin md/GOARCH#arm64 api/iam#1.36.3",
];

pub struct Browser {
    pub raw: &'static str,
    pub os: &'static str,
    pub name: &'static str,
}

pub static BROWSERS: &[Browser] = &[
    Browser {
        raw: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
        os: "Mac OS X",
        name: "CHROME",
    },
    Browser {
        raw: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
        os: "Windows 10",
        name: "EDGE_CHROMIUM",
    },
    Browser {
        raw: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0.1 Safari/605.1.15",
        os: "Mac OS X",
        name: "SAFARI",
    },
    Browser {
        raw: "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
        os: "Linux",
        name: "FIREFOX",
    },
    Browser {
        raw: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/129.0.0.0 Safari/537.36",
        os: "Windows 10",
        name: "CHROME",
    },
];

pub const KUBECTL_AGENTS: &[&str] = &[
    "kubectl/v1.30.4 (darwin/arm64) kubernetes/a51b3b7",
    "kubectl/v1.31.1 (darwin/arm64) kubernetes/948afe5",
    "kubectl/v1.31.1 (linux/amd64) kubernetes/948afe5",
    "k9s/v0.32.5 (darwin/arm64) kubernetes/v0.31.0",
    "Lens/2024.9.300059 (darwin/arm64) kubernetes/v0.30.1",
];

pub const GIT_AGENTS: &[&str] = &[
    "git/2.46.0",
    "git/2.39.5 (Apple Git-154)",
    "git/2.45.2",
    "GitHub Desktop/3.4.8 (macOS)",
];

// ------------------------------------------------------------------------------------------
// GitHub, Okta
// ------------------------------------------------------------------------------------------

const REPO_WORDS_A: &[&str] = &[
    "payments",
    "orders",
    "web",
    "mobile",
    "infra",
    "data",
    "search",
    "billing",
    "auth",
    "docs",
    "catalog",
    "ledger",
    "ml",
    "platform",
    "shipping",
    "notifications",
];
const REPO_WORDS_B: &[&str] = &[
    "api",
    "frontend",
    "service",
    "terraform",
    "pipelines",
    "sdk",
    "worker",
    "config",
    "charts",
    "tools",
];

pub struct Repo {
    pub name: String,
    pub id: u64,
}

pub const OKTA_APPS: &[&str] = &[
    "Slack",
    "Salesforce.com",
    "Workday",
    "AWS IAM Identity Center",
    "GitHub Enterprise Cloud - Organization",
    "Zoom",
    "Google Workspace",
    "Jira Software Cloud",
    "Confluence Cloud",
    "Datadog",
    "PagerDuty",
    "Figma",
];

/// Groups administrators add people to. Adding *another* user to an admin group is
/// administration; the self-grant attack adds the actor itself.
pub const OKTA_GROUPS: &[&str] = &[
    "Engineering",
    "Data-Platform",
    "Finance",
    "Contractors",
    "AWS-ReadOnly",
    "AWS-Developers",
    "Okta-Super-Admins",
    "Helpdesk-Admins",
];

pub const OKTA_ROLES: &[&str] = &[
    "Help Desk administrator",
    "Read-only administrator",
    "Group administrator",
    "Application administrator",
];

/// The whole cast of one run.
pub struct Pools {
    pub people: Vec<Person>,
    /// Indexes into `people` of the Okta and AWS administrators.
    pub admins: Vec<u32>,
    pub services: Vec<Service>,
    pub repos: Vec<Repo>,
    /// Okta app instance ids, parallel to [`OKTA_APPS`].
    pub okta_app_ids: Vec<String>,
    pub okta_group_ids: Vec<String>,
    /// Role ids of named roles (`AROA…`), computed on demand from names.
    pub sso_role_ids: Vec<String>,
    pub sso_admin_role_id: String,
}

/// An AWS unique id: `prefix` plus characters derived from `name` (21 characters in all).
pub fn aws_unique_id(prefix: &str, name: &str) -> String {
    let mut b = Vec::with_capacity(21);
    out::s(&mut b, prefix);
    out::chars(&mut b, AWS_ALPHABET, hash_str(name), 21 - prefix.len());
    String::from_utf8(b).expect("ASCII")
}

/// An Okta object id: `prefix` plus base62 characters (20 in all).
pub fn okta_object_id(prefix: &str, name: &str) -> String {
    let mut b = Vec::with_capacity(20);
    out::s(&mut b, prefix);
    out::chars(&mut b, BASE62, hash_str(name), 20 - prefix.len());
    String::from_utf8(b).expect("ASCII")
}

impl Pools {
    /// The cast: fixed names, seed-dependent assignment of homes, browsers and habits.
    pub fn new(seed: u64, people: usize) -> Pools {
        let mut rng = Rng::new(hash2(seed, 0x9001));
        let mut list = Vec::with_capacity(people);
        for n in 0..people {
            let first = FIRST[n % FIRST.len()];
            let last = LAST[(n / FIRST.len() + n * 7) % LAST.len()];
            let round = n / (FIRST.len() * LAST.len());
            let (login, github) = if round == 0 {
                (format!("{first}.{last}"), format!("{first}-{last}"))
            } else {
                (
                    format!("{first}.{last}{round}"),
                    format!("{first}-{last}-{round}"),
                )
            };
            let display = format!("{} {}", capitalize(first), capitalize(last));
            let home = 2 + rng.below((PLACES.len() - 2) as u64) as usize;
            let okta_id = okta_object_id("00u", &login);
            list.push(Person {
                home_net: net24(&PLACES[home], hash_str(&login)),
                home,
                in_office: rng.chance(0.45),
                browser: rng.below(BROWSERS.len() as u64) as usize,
                cli: rng.below(3) as usize,
                github_id: 40_000_000 + hash_str(&github) % 100_000_000,
                okta_id,
                login,
                display,
                github,
            });
        }
        let admins = (0..people as u32).filter(|n| n % 40 == 7).collect();
        let services = SERVICE_NAMES
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let runtime = match k % 5 {
                    0..=2 => Runtime::Ecs,
                    3 => Runtime::Lambda,
                    _ => Runtime::Ec2,
                };
                let role = match runtime {
                    Runtime::Ecs => format!("{name}-task"),
                    Runtime::Lambda => format!("lambda-{name}"),
                    Runtime::Ec2 => format!("{name}-instance"),
                };
                let account = if k % 7 == 3 {
                    ACCOUNT_SHARED
                } else {
                    ACCOUNT_PROD
                };
                let mut secrets = vec![format!("prod/{name}/db-credentials")];
                if k % 2 == 0 {
                    secrets.push(format!("prod/{name}/api-key"));
                }
                if k % 3 == 0 {
                    secrets.push("prod/shared/datadog-api-key".to_owned());
                }
                Service {
                    name,
                    runtime,
                    role_id: aws_unique_id("AROA", &role),
                    role,
                    account,
                    secrets,
                    bucket: format!("northwind-{name}-data"),
                    table: name.replace('-', "_"),
                    queue: format!("{name}-events"),
                    ua: SDK_AGENTS[k % SDK_AGENTS.len()],
                    vpc: 20 + (k % 6) as u8,
                }
            })
            .collect();
        let mut repos = vec![Repo {
            name: "monorepo".to_owned(),
            id: 710_013_733,
        }];
        for a in REPO_WORDS_A {
            for b in REPO_WORDS_B {
                let name = format!("{a}-{b}");
                repos.push(Repo {
                    id: 600_000_000 + hash_str(&name) % 150_000_000,
                    name,
                });
            }
        }
        Pools {
            people: list,
            admins,
            services,
            repos,
            okta_app_ids: OKTA_APPS.iter().map(|a| okta_object_id("0oa", a)).collect(),
            okta_group_ids: OKTA_GROUPS
                .iter()
                .map(|g| okta_object_id("00g", g))
                .collect(),
            sso_role_ids: SSO_ROLES.iter().map(|r| aws_unique_id("AROA", r)).collect(),
            sso_admin_role_id: aws_unique_id("AROA", SSO_ADMIN_ROLE),
        }
    }

    pub fn email(&self, person: u32, b: &mut Vec<u8>) {
        out::s(b, &self.people[person as usize].login);
        b.push(b'@');
        out::s(b, DOMAIN);
    }
}

fn capitalize(word: &str) -> String {
    let mut c = word.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_unique_and_places_consistent() {
        let pools = Pools::new(1, 4000);
        let mut logins: Vec<&str> = pools.people.iter().map(|p| p.login.as_str()).collect();
        logins.sort_unstable();
        logins.dedup();
        assert_eq!(logins.len(), 4000);
        for p in &pools.people {
            let net = p.home_net;
            let place = &PLACES[p.home];
            assert_eq!((net >> 24) as u8, place.a);
            let b = (net >> 16) as u8;
            assert!(b >= place.b_lo && b <= place.b_hi);
            assert_eq!(net & 0xff, 0);
        }
        assert_eq!(net24(&PLACES[OFFICE], 5) >> 8, 0x00c6_3364);
        assert_eq!(pools.sso_admin_role_id.len(), 21);
        assert!(pools.services.iter().all(|s| s.secrets.len() <= 3));
    }
}

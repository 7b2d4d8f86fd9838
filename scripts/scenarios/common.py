"""Accounts, places, clients and thresholds shared by the scenario cases."""

from vendors import Browser, Place

# AWS accounts of the fictional company (Northwind).
PROD = "482915736014"  # production workloads and data
MEMBER = "615482093771"  # a member account reached through OrganizationAccountAccessRole
SHARED = "215836470925"  # shared services: CI, agent platform

SSO_PATH = "aws-reserved/sso.amazonaws.com/"

# Where requests come from. 198.51.100.0/24 is the corporate egress (Austin office), 192.0.2.0/24
# remote staff and CI runners, 203.0.113.0/24 attacker infrastructure.
OFFICE = Place(
    "198.51.100.23", "Austin", "Texas", "United States", "78701", 30.2672, -97.7431,
    7018, "at&t services, inc.", "at&t services  inc.", "att.net",
)
HOME_DENVER = Place(
    "192.0.2.61", "Denver", "Colorado", "United States", "80202", 39.7392, -104.9903,
    7922, "comcast cable communications, llc", "comcast cable communications  llc", "comcast.net",
)
HOME_SEATTLE = Place(
    "192.0.2.118", "Seattle", "Washington", "United States", "98101", 47.6062, -122.3321,
    20115, "charter communications", "charter communications inc", "spectrum.com",
)
ATTACKER_RO = Place(
    "203.0.113.144", "Bucharest", "Bucuresti", "Romania", "030167", 44.4268, 26.1025,
    9009, "m247 europe srl", "m247 europe srl", "m247.com", proxy=True,
)
ATTACKER_NL = Place(
    "203.0.113.77", "Amsterdam", "North Holland", "Netherlands", "1012", 52.3676, 4.9041,
    60781, "leaseweb netherlands b.v.", "leaseweb netherlands b.v.", "leaseweb.com", proxy=True,
)

CHROME_MAC = Browser(
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36",
    "Mac OS X",
    "CHROME",
)
EDGE_WIN = Browser(
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36 Edg/129.0.0.0",
    "Windows 10",
    "EDGE",
)
CHROME_WIN = Browser(
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/128.0.0.0 Safari/537.36",
    "Windows 10",
    "CHROME",
)
FIREFOX_LINUX = Browser(
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Linux",
    "FIREFOX",
)
SAFARI_MAC = Browser(
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Safari/605.1.15",
    "Mac OS X",
    "SAFARI",
)


def cli_ua(command, os_="linux#6.8.0-1015-aws", distrib="ubuntu.24"):
    return (
        "aws-cli/2.17.43 md/awscrt#0.21.2 ua/2.0 os/" + os_ + " md/arch#x86_64 lang/python#3.12.6 "
        "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#" + distrib
        + " md/prompt#off md/command#" + command
    )


def cli_mac_ua(command):
    return (
        "aws-cli/2.17.43 md/awscrt#0.21.2 ua/2.0 os/macos#23.6.0 md/arch#arm64 lang/python#3.12.6 "
        "md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off md/command#"
        + command
    )


def s3_cli_ua(command):
    """S3 data events show the user agent in brackets."""
    return "[" + cli_ua(command) + "]"


BOTO3_UA = (
    "Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#6.1.0-25-amd64 md/arch#x86_64 "
    "lang/python#3.11.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.36"
)
BOTO3_LAMBDA_UA = (
    "Boto3/1.34.145 md/Botocore#1.34.145 ua/2.0 os/linux#5.10.226-235.879.amzn2.x86_64 "
    "md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 "
    "cfg/retry-mode#legacy Botocore/1.34.145"
)
TERRAFORM_UA = (
    "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.32.0 ua/2.1 os/linux "
    "lang/go#1.23.1 md/GOOS#linux md/GOARCH#amd64 api/iam#1.37.0"
)
JAVA_SDK_UA = (
    "aws-sdk-java/2.28.16 Linux/5.10.226-214.880.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.4+7-LTS "
    "Java/21.0.4 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/standard"
)
NODE_SDK_UA = (
    "aws-sdk-js/3.658.1 ua/2.1 os/linux#5.10.226-214.880.amzn2.x86_64 lang/js md/nodejs#20.17.0 "
    "api/sts#3.658.1"
)
RCLONE_UA = "[rclone/v1.68.1]"
CONSOLE_UA = "AWS Internal"

KUBECTL_LINUX = "kubectl/v1.30.4 (linux/amd64) kubernetes/a51b3b7"
KUBECTL_MAC = "kubectl/v1.31.1 (darwin/arm64) kubernetes/948afe5"

ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"

# Planned thresholds of the rule pack (README: "Thresholds").
S3_COUNT = 60
S3_COUNT_WINDOW = 300
S3_BYTES = 600_000_000
S3_BYTES_MIB = 600 * 1024 * 1024
S3_BYTES_WINDOW = 600
SECRETS_DISTINCT = 12
SECRETS_WINDOW = 300
CLONES_DISTINCT = 25
CLONES_WINDOW = 600
MFA_FAILURES = 4
MFA_WINDOW = 600
STALE_ADMIN_S = 3600
DURATION_S = 8 * 3600

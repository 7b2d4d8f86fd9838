//! Service calls whose bodies depend on more than one persona's service: DynamoDB items, SQS
//! messages, KMS decryption for a secret, secret reads, and the large documents (task
//! definitions, instance launches) that make the long tail of CloudTrail record sizes.

use super::{write, Call};
use crate::out::{self, s};
use crate::rng::hash_str;

/// The `resources` entry of a DynamoDB table.
pub fn table_resource(b: &mut Vec<u8>, account: &str, table: &str) {
    s(b, "[{\"accountId\":\"");
    s(b, account);
    s(
        b,
        "\",\"type\":\"AWS::DynamoDB::Table\",\"ARN\":\"arn:aws:dynamodb:us-east-1:",
    );
    s(b, account);
    s(b, ":table/");
    s(b, table);
    s(b, "\"}]");
}

/// The DynamoDB data calls, by `op`: `GetItem`, `Query`, `PutItem`.
pub const TABLE_OPS: [&str; 3] = ["GetItem", "Query", "PutItem"];

/// A DynamoDB data event: [`TABLE_OPS`]`[op]` on `table`.
pub fn dynamodb(b: &mut Vec<u8>, c: &mut Call<'_>, account: &str, table: &str, op: usize) {
    c.data = true;
    c.read_only = op < 2;
    write(
        b,
        c,
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"tableName\":\"");
            s(b, table);
            match op {
                0 => s(b, "\",\"key\":{\"pk\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"},\"consistentRead\":false}"),
                1 => s(b, "\",\"indexName\":\"by-customer\",\"keyConditionExpression\":\"#c = :c\",\"expressionAttributeNames\":{\"#c\":\"customer_id\"},\"expressionAttributeValues\":{\":c\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"},\"limit\":50}"),
                _ => s(b, "\",\"item\":{\"pk\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"},\"returnConsumedCapacity\":\"TOTAL\"}"),
            }
        }),
        (op >= 2).then_some(&|b: &mut Vec<u8>| {
            s(b, "{\"consumedCapacity\":{\"tableName\":\"");
            s(b, table);
            s(b, "\",\"capacityUnits\":1.0,\"writeCapacityUnits\":1.0}}");
        }),
        None,
        Some(&|b: &mut Vec<u8>| table_resource(b, account, table)),
    );
}

/// The SQS data calls, by index.
pub const QUEUE_OPS: [&str; 3] = ["ReceiveMessage", "SendMessage", "DeleteMessage"];

/// An SQS data event (`c.name` one of [`QUEUE_OPS`]) on `queue`.
pub fn sqs(b: &mut Vec<u8>, c: &mut Call<'_>, account: &str, queue: &str, seed: u64) {
    c.data = true;
    let name = c.name;
    write(
        b,
        c,
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"queueUrl\":\"https://sqs.us-east-1.amazonaws.com/");
            s(b, account);
            b.push(b'/');
            s(b, queue);
            b.push(b'"');
            match name {
                "ReceiveMessage" => s(b, ",\"maxNumberOfMessages\":10,\"waitTimeSeconds\":20,\"attributeNames\":[\"All\"]}"),
                "SendMessage" => s(b, ",\"messageBody\":\"HIDDEN_DUE_TO_SECURITY_REASONS\",\"messageAttributes\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"}"),
                _ => s(b, ",\"receiptHandle\":\"HIDDEN_DUE_TO_SECURITY_REASONS\"}"),
            }
        }),
        (name == "SendMessage").then_some(&|b: &mut Vec<u8>| {
            s(b, "{\"mD5OfMessageBody\":\"");
            out::hex(b, seed ^ 0x3d5, 32);
            s(b, "\",\"mD5OfMessageAttributes\":\"");
            out::hex(b, seed ^ 0x3d6, 32);
            s(b, "\",\"messageId\":\"");
            out::uuid(b, seed ^ 0x3d7);
            s(b, "\"}");
        }),
        None,
        Some(&|b: &mut Vec<u8>| {
            s(b, "[{\"accountId\":\"");
            s(b, account);
            s(
                b,
                "\",\"type\":\"AWS::SQS::Queue\",\"ARN\":\"arn:aws:sqs:us-east-1:",
            );
            s(b, account);
            b.push(b':');
            s(b, queue);
            s(b, "\"}]");
        }),
    );
}

/// `kms:Decrypt` of a Secrets Manager secret's data key (the encryption context names it).
pub fn kms_decrypt(b: &mut Vec<u8>, c: &mut Call<'_>, account: &str, context: &str, seed: u64) {
    c.read_only = true;
    write(
        b,
        c,
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"encryptionAlgorithm\":\"SYMMETRIC_DEFAULT\",\"encryptionContext\":{\"aws:secretsmanager:arn\":\"arn:aws:secretsmanager:us-east-1:");
            s(b, account);
            s(b, ":secret:");
            s(b, context);
            b.push(b'-');
            out::chars(b, out::BASE62, hash_str(context), 6);
            s(b, "\",\"SecretVersionId\":\"");
            out::uuid(b, hash_str(context));
            s(b, "\"}}");
        }),
        None,
        None,
        Some(&|b: &mut Vec<u8>| {
            s(b, "[{\"accountId\":\"");
            s(b, account);
            s(
                b,
                "\",\"type\":\"AWS::KMS::Key\",\"ARN\":\"arn:aws:kms:us-east-1:",
            );
            s(b, account);
            s(b, ":key/");
            out::uuid(b, seed % 7);
            s(b, "\"}]");
        }),
    );
}

/// `secretsmanager:GetSecretValue` of a secret by name.
pub fn get_secret(b: &mut Vec<u8>, c: &Call<'_>, secret_id: &str) {
    write(
        b,
        c,
        Some(&|b: &mut Vec<u8>| {
            s(b, "{\"secretId\":\"");
            s(b, secret_id);
            s(b, "\"}");
        }),
        None,
        None,
        None,
    );
}

/// An ECS task definition of `containers` containers with `env_vars` settings each: the long
/// tail of CloudTrail request sizes.
pub fn task_definition(b: &mut Vec<u8>, name: &str, containers: u64, env_vars: u64, seed: u64) {
    s(b, "{\"family\":\"");
    s(b, name);
    s(b, "\",\"taskRoleArn\":\"arn:aws:iam::482915736014:role/");
    s(b, name);
    s(b, "-task\",\"executionRoleArn\":\"arn:aws:iam::482915736014:role/ecsTaskExecutionRole\",\"networkMode\":\"awsvpc\",\"containerDefinitions\":[");
    for n in 0..containers {
        if n > 0 {
            b.push(b',');
        }
        s(b, "{\"name\":\"");
        s(b, name);
        if n > 0 {
            s(b, "-sidecar-");
            out::u(b, n);
        }
        s(
            b,
            "\",\"image\":\"482915736014.dkr.ecr.us-east-1.amazonaws.com/",
        );
        s(b, name);
        b.push(b':');
        out::hex(b, seed ^ 0x7a9, 12);
        s(b, "\",\"cpu\":0,\"portMappings\":[{\"containerPort\":8080,\"hostPort\":8080,\"protocol\":\"tcp\",\"name\":\"http\",\"appProtocol\":\"http\"}],\"essential\":true,\"environment\":[");
        for v in 0..env_vars {
            if v > 0 {
                b.push(b',');
            }
            s(b, "{\"name\":\"SETTING_");
            out::u(b, v);
            s(b, "\",\"value\":\"");
            out::hex(b, seed ^ (n << 8) ^ v, 20);
            s(b, "\"}");
        }
        s(b, "],\"secrets\":[{\"name\":\"DB_PASSWORD\",\"valueFrom\":\"arn:aws:secretsmanager:us-east-1:482915736014:secret:prod/");
        s(b, name);
        s(b, "/db-credentials\"}],\"logConfiguration\":{\"logDriver\":\"awslogs\",\"options\":{\"awslogs-group\":\"/ecs/");
        s(b, name);
        s(b, "\",\"awslogs-region\":\"us-east-1\",\"awslogs-stream-prefix\":\"ecs\"}},\"healthCheck\":{\"command\":[\"CMD-SHELL\",\"curl -f http://localhost:8080/health || exit 1\"],\"interval\":30,\"timeout\":5,\"retries\":3}}");
    }
    s(b, "],\"requiresCompatibilities\":[\"FARGATE\"],\"cpu\":\"1024\",\"memory\":\"2048\",\"runtimePlatform\":{\"cpuArchitecture\":\"ARM64\",\"operatingSystemFamily\":\"LINUX\"}}");
}

/// The `RunInstances` response: the launched instance described at length.
pub fn run_instances_response(b: &mut Vec<u8>, name: &str, seed: u64) {
    s(b, "{\"requestId\":\"");
    out::uuid(b, seed ^ 0xb1);
    s(b, "\",\"reservationId\":\"r-0");
    out::hex(b, seed ^ 0xb2, 16);
    s(b, "\",\"ownerId\":\"482915736014\",\"groupSet\":{},\"instancesSet\":{\"items\":[{\"instanceId\":\"i-0");
    out::hex(b, seed ^ 0xb3, 16);
    s(b, "\",\"imageId\":\"ami-0");
    out::hex(b, seed ^ 0xa1, 16);
    s(b, "\",\"currentInstanceBootMode\":\"uefi\",\"instanceState\":{\"code\":0,\"name\":\"pending\"},\"privateDnsName\":\"ip-10-20-");
    out::u(b, seed % 64);
    b.push(b'-');
    out::u(b, 2 + seed % 250);
    s(b, ".ec2.internal\",\"amiLaunchIndex\":0,\"productCodes\":{},\"instanceType\":\"m7g.large\",\"launchTime\":");
    out::u(b, 1_730_000_000_000 + seed % 10_000_000);
    s(b, ",\"placement\":{\"availabilityZone\":\"us-east-1b\",\"tenancy\":\"default\"},\"monitoring\":{\"state\":\"disabled\"},\"subnetId\":\"subnet-0");
    out::hex(b, seed ^ 0xb4, 16);
    s(b, "\",\"vpcId\":\"vpc-0");
    out::hex(b, seed ^ 0xb5, 16);
    s(b, "\",\"privateIpAddress\":\"10.20.");
    out::u(b, seed % 64);
    b.push(b'.');
    out::u(b, 2 + seed % 250);
    s(b, "\",\"stateReason\":{\"code\":\"pending\",\"message\":\"pending\"},\"architecture\":\"arm64\",\"rootDeviceType\":\"ebs\",\"rootDeviceName\":\"/dev/xvda\",\"blockDeviceMapping\":{},\"virtualizationType\":\"hvm\",\"clientToken\":\"");
    out::uuid(b, seed ^ 0xa2);
    s(
        b,
        "\",\"tagSet\":{\"items\":[{\"key\":\"Service\",\"value\":\"",
    );
    s(b, name);
    s(b, "\"},{\"key\":\"DeployedBy\",\"value\":\"github-actions\"}]},\"groupSet\":{\"items\":[{\"groupId\":\"sg-0");
    out::hex(b, seed ^ 0xb6, 16);
    s(b, "\",\"groupName\":\"");
    s(b, name);
    s(b, "-instances\"}]},\"sourceDestCheck\":true,\"hypervisor\":\"xen\",\"networkInterfaceSet\":{\"items\":[{\"networkInterfaceId\":\"eni-0");
    out::hex(b, seed ^ 0xb7, 16);
    s(b, "\",\"subnetId\":\"subnet-0");
    out::hex(b, seed ^ 0xb4, 16);
    s(b, "\",\"vpcId\":\"vpc-0");
    out::hex(b, seed ^ 0xb5, 16);
    s(
        b,
        "\",\"ownerId\":\"482915736014\",\"status\":\"in-use\",\"macAddress\":\"0e:",
    );
    out::hex(b, seed ^ 0xb8, 2);
    s(b, ":5c:21:9a:7f\",\"privateIpAddress\":\"10.20.");
    out::u(b, seed % 64);
    b.push(b'.');
    out::u(b, 2 + seed % 250);
    s(b, "\",\"sourceDestCheck\":true,\"interfaceType\":\"interface\",\"groupSet\":{\"items\":[{\"groupId\":\"sg-0");
    out::hex(b, seed ^ 0xb6, 16);
    s(b, "\",\"groupName\":\"");
    s(b, name);
    s(
        b,
        "-instances\"}]},\"attachment\":{\"attachmentId\":\"eni-attach-0",
    );
    out::hex(b, seed ^ 0xb9, 16);
    s(
        b,
        "\",\"deviceIndex\":0,\"networkCardIndex\":0,\"status\":\"attaching\",\"attachTime\":",
    );
    out::u(b, 1_730_000_000_000 + seed % 10_000_000);
    s(b, ",\"deleteOnTermination\":true},\"privateIpAddressesSet\":{\"item\":[{\"privateIpAddress\":\"10.20.");
    out::u(b, seed % 64);
    b.push(b'.');
    out::u(b, 2 + seed % 250);
    s(b, "\",\"primary\":true}]},\"ipv6AddressesSet\":{},\"tagSet\":{}}]},\"ebsOptimized\":false,\"enaSupport\":true,\"metadataOptions\":{\"state\":\"pending\",\"httpTokens\":\"required\",\"httpPutResponseHopLimit\":2,\"httpEndpoint\":\"enabled\",\"httpProtocolIpv4\":\"enabled\",\"httpProtocolIpv6\":\"disabled\",\"instanceMetadataTags\":\"disabled\"},\"maintenanceOptions\":{\"autoRecovery\":\"default\"},\"privateDnsNameOptions\":{\"hostnameType\":\"ip-name\",\"enableResourceNameDnsARecord\":false,\"enableResourceNameDnsAAAARecord\":false}}]}}");
}

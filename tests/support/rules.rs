//! Rules the engine tests share.

/// A rule that kills the session that deletes a bucket.
pub const DELETE_BUCKET: &str = r#"
title: Bucket deleted
id: test.delete_bucket
detection:
  gone:
    action: s3:DeleteBucket
  condition: gone
action: {kind: revoke_session, mode: enforce}
"#;

//! The system policies every account has (names as in Alibaba Cloud; the
//! contents are Arca's).

/// `(name, description, document)` of each system policy.
pub const SYSTEM_POLICIES: &[(&str, &str, &str)] = &[
    (
        "AdministratorAccess",
        "Full access to every resource of the account.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ),
    (
        "AliyunOSSFullAccess",
        "Full access to OSS.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"*"}]}"#,
    ),
    (
        "AliyunOSSReadOnlyAccess",
        "Read-only access to OSS.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:Get*","oss:List*"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunKMSFullAccess",
        "Full access to KMS.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
    ),
    (
        "AliyunKMSReadOnlyAccess",
        "Read-only access to KMS keys and aliases.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["kms:Describe*","kms:List*"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunKMSCryptoUserAccess",
        "Use KMS keys for cryptographic operations.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["kms:Describe*","kms:List*","kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*","kms:ReEncrypt*"],"Resource":"*"}]}"#,
    ),
    (
        "AliyunRAMFullAccess",
        "Manage users, groups, access keys and policies.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ram:*","Resource":"*"}]}"#,
    ),
    (
        "AliyunRAMReadOnlyAccess",
        "Read users, groups and policies.",
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["ram:Get*","ram:List*"],"Resource":"*"}]}"#,
    ),
];

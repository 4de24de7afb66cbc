//! What can go wrong in the object service, as kinds. Dialects map each kind
//! to their wire code and status; the core never picks a status.

use crate::names::KeyProblem;

/// An object-service failure.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Bucket name breaks the naming rules.
    #[error("The specified bucket is not valid.")]
    InvalidBucketName,
    /// Object key breaks the naming rules.
    #[error("invalid object name")]
    InvalidObjectName(KeyProblem),
    /// The bucket does not exist.
    #[error("The specified bucket does not exist.")]
    NoSuchBucket,
    /// The key does not exist.
    #[error("The specified key does not exist.")]
    NoSuchKey,
    /// The upload does not exist.
    #[error(
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )]
    NoSuchUpload,
    /// The bucket name is taken, or re-created with other settings.
    #[error(
        "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
    )]
    BucketAlreadyExists,
    /// DeleteBucket on a bucket with objects or uploads.
    #[error("The bucket you tried to delete is not empty.")]
    BucketNotEmpty,
    /// Too many buckets for the account.
    #[error("You have attempted to create more buckets than allowed.")]
    TooManyBuckets,
    /// The caller may not do this.
    #[error("{0}")]
    AccessDenied(String),
    /// A bucket policy that does not parse or validate.
    #[error("The policy is not valid: {0}")]
    MalformedPolicy(String),
    /// GetBucketPolicy on a bucket without one.
    #[error("The bucket policy does not exist.")]
    NoSuchBucketPolicy,
    /// The bucket lives in another region; it must be addressed there.
    #[error(
        "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint."
    )]
    WrongRegion {
        /// The bucket's region.
        region: String,
    },
    /// A request parameter has a bad value.
    #[error("{message}")]
    InvalidArgument {
        /// Human-readable reason.
        message: String,
        /// Parameter name.
        name: String,
        /// Offending value.
        value: String,
    },
    /// Content-MD5 malformed or not matching the body.
    #[error("The Content-MD5 you specified is not valid.")]
    InvalidDigest,
    /// Body larger than allowed.
    #[error("Your proposed upload exceeds the maximum allowed object size.")]
    EntityTooLarge,
    /// A non-last part is smaller than the minimum.
    #[error("Your proposed upload is smaller than the minimum allowed size.")]
    EntityTooSmall,
    /// The body ended before Content-Length bytes (or went past it).
    #[error("You did not provide the number of bytes specified by the Content-Length HTTP header.")]
    IncompleteBody,
    /// Complete named a part that is missing or has another ETag.
    #[error(
        "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag."
    )]
    InvalidPart,
    /// Complete listed parts out of order.
    #[error("The list of parts was not in ascending order. Parts list must be specified in order by part number.")]
    InvalidPartOrder,
    /// Append at a position other than the current length.
    #[error("Position is not equal to file length")]
    PositionNotEqualToLength {
        /// The current length: where the next append must start.
        next: u64,
    },
    /// Append to an object that is not appendable.
    #[error("The object is not appendable")]
    ObjectNotAppendable,
    /// `forbid-overwrite` and the key exists.
    #[error("The object you specified already exists and can not be overwritten.")]
    FileAlreadyExists,
    /// An If-Match / If-Unmodified-Since style condition failed.
    #[error("At least one of the pre-conditions you specified did not hold.")]
    PreconditionFailed {
        /// Which condition (the request header name).
        condition: &'static str,
    },
    /// An If-None-Match / If-Modified-Since style condition failed.
    #[error("Not Modified")]
    NotModified,
    /// The KMS key named (or that protects the object) does not exist in
    /// the bucket's region — never did, or was deleted.
    #[error("The specified KMS key does not exist in this region, or was deleted.")]
    KmsKeyNotFound,
    /// KMS is switched off for the account.
    #[error("KMS is not enabled for this account.")]
    KmsServiceNotEnabled,
    /// The KMS key's state forbids its use (`Disabled`, `PendingDeletion`, `PendingImport`).
    #[error("The request was rejected because the key state is {0}")]
    KmsKeyState(String),
    /// An unknown SSE algorithm.
    #[error("The Encryption request you specified is not valid. Supported value: AES256/KMS/SM4")]
    InvalidEncryptionAlgorithm(String),
    /// Stored data or keys failed authentication: never served.
    #[error("integrity check failed")]
    Integrity,
    /// A fault inside the server; the detail is for logs, not clients.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// Shorthand for [`CoreError::InvalidArgument`].
    pub fn invalid_argument(message: impl Into<String>, name: impl Into<String>, value: impl Into<String>) -> Self {
        CoreError::InvalidArgument { message: message.into(), name: name.into(), value: value.into() }
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        CoreError::Internal(e.to_string())
    }
}

impl From<arca_meta::MetaError> for CoreError {
    fn from(e: arca_meta::MetaError) -> Self {
        use arca_meta::MetaError as M;
        match e {
            M::NoSuchBucket => CoreError::NoSuchBucket,
            M::BucketExists(_) => CoreError::BucketAlreadyExists,
            M::BucketNotEmpty => CoreError::BucketNotEmpty,
            M::NoSuchUpload => CoreError::NoSuchUpload,
            M::PartsChanged => CoreError::InvalidPart,
            M::Conflict(_) => CoreError::Internal("unexpected write conflict".into()),
            M::Engine(msg) => CoreError::Internal(msg),
        }
    }
}

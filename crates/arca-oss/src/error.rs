//! OSS error responses: the one table from core error kinds to (status,
//! code, message), plus the errors only the dialect raises (signatures,
//! malformed requests). Internal details go to the log, never to clients.

use arca_core::CoreError;
use arca_core::names::KeyProblem;
use http::StatusCode;

/// An error as OSS renders it.
#[derive(Debug, Clone)]
pub struct OssError {
    /// HTTP status.
    pub status: StatusCode,
    /// `<Code>`.
    pub code: &'static str,
    /// `<Message>`.
    pub message: String,
    /// Extra elements after `<HostId>` (e.g. `ArgumentName`, `Endpoint`).
    pub extra: Vec<(&'static str, String)>,
    /// Extra response headers (e.g. `x-oss-next-append-position`).
    pub headers: Vec<(&'static str, String)>,
    /// Detail for the log only.
    pub internal: Option<String>,
}

impl OssError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        OssError { status, code, message: message.into(), extra: Vec::new(), headers: Vec::new(), internal: None }
    }

    /// Adds an element to the body.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    /// 400 InvalidArgument naming the argument.
    pub fn invalid_argument(message: impl Into<String>, name: &str, value: &str) -> Self {
        OssError::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
            .with("ArgumentName", name)
            .with("ArgumentValue", value)
    }

    /// 400 MalformedXML.
    pub fn malformed_xml() -> Self {
        OssError::new(
            StatusCode::BAD_REQUEST,
            "MalformedXML",
            "The XML you provided was not well-formed or did not validate against our published schema.",
        )
    }

    /// 403 AccessDenied.
    pub fn access_denied(message: impl Into<String>) -> Self {
        OssError::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    /// 500 InternalError; the detail goes to the log only.
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut e = OssError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again.",
        );
        e.internal = Some(detail.into());
        e
    }

    /// 304 with no body: oss2 recognises NotModified only with an empty code.
    pub fn not_modified() -> Self {
        OssError::new(StatusCode::NOT_MODIFIED, "", "")
    }
}

/// Where a core error came from, for the endpoint hint of `WrongRegion`.
pub fn from_core(e: CoreError, endpoint_of: impl Fn(&str) -> String) -> OssError {
    use StatusCode as S;
    let msg = e.to_string();
    match e {
        CoreError::InvalidBucketName => OssError::new(S::BAD_REQUEST, "InvalidBucketName", msg),
        CoreError::InvalidObjectName(p) => OssError::new(
            S::BAD_REQUEST,
            "InvalidObjectName",
            match p {
                KeyProblem::Empty => "The Object name can not be empty",
                KeyProblem::TooLong => "The Length of Object name must be less than 1024",
                KeyProblem::BadStart => "The specified object is not valid",
            },
        ),
        CoreError::NoSuchBucket => OssError::new(S::NOT_FOUND, "NoSuchBucket", msg),
        CoreError::NoSuchKey => OssError::new(S::NOT_FOUND, "NoSuchKey", msg),
        CoreError::NoSuchUpload => OssError::new(S::NOT_FOUND, "NoSuchUpload", msg),
        CoreError::BucketAlreadyExists => OssError::new(S::CONFLICT, "BucketAlreadyExists", msg),
        CoreError::BucketNotEmpty => OssError::new(S::CONFLICT, "BucketNotEmpty", msg),
        CoreError::TooManyBuckets => OssError::new(S::BAD_REQUEST, "TooManyBuckets", msg),
        CoreError::AccessDenied(m) => OssError::access_denied(m),
        CoreError::MalformedPolicy(_) => OssError::new(S::BAD_REQUEST, "MalformedPolicy", msg),
        CoreError::NoSuchBucketPolicy => OssError::new(S::NOT_FOUND, "NoSuchBucketPolicy", msg),
        CoreError::WrongRegion { region } => {
            let endpoint = endpoint_of(&region);
            let message = format!("{}: {endpoint}", msg.trim_end_matches('.'));
            OssError::access_denied(message).with("Endpoint", endpoint)
        }
        CoreError::InvalidArgument { message, name, value } => OssError::invalid_argument(message, &name, &value),
        CoreError::InvalidDigest => OssError::new(S::BAD_REQUEST, "InvalidDigest", msg),
        CoreError::EntityTooLarge => OssError::new(S::BAD_REQUEST, "EntityTooLarge", msg),
        CoreError::EntityTooSmall => OssError::new(S::BAD_REQUEST, "EntityTooSmall", msg),
        CoreError::IncompleteBody => OssError::new(S::BAD_REQUEST, "IncompleteBody", msg),
        CoreError::InvalidPart => OssError::new(S::BAD_REQUEST, "InvalidPart", msg),
        CoreError::InvalidPartOrder => OssError::new(S::BAD_REQUEST, "InvalidPartOrder", msg),
        CoreError::PositionNotEqualToLength { next } => {
            let mut e = OssError::new(S::CONFLICT, "PositionNotEqualToLength", msg);
            e.headers.push(("x-oss-next-append-position", next.to_string()));
            e
        }
        CoreError::ObjectNotAppendable => OssError::new(S::CONFLICT, "ObjectNotAppendable", msg),
        CoreError::FileAlreadyExists => OssError::new(S::CONFLICT, "FileAlreadyExists", msg),
        CoreError::PreconditionFailed { condition } => {
            OssError::new(S::PRECONDITION_FAILED, "PreconditionFailed", msg).with("Condition", condition)
        }
        CoreError::NotModified => OssError::not_modified(),
        CoreError::KmsKeyNotFound => OssError::access_denied(msg),
        CoreError::KmsServiceNotEnabled => OssError::new(S::FORBIDDEN, "KmsServiceNotEnabled", msg),
        CoreError::KmsKeyState(state) => {
            let code = match state.as_str() {
                "Disabled" => "KeyDisabled",
                "PendingDeletion" => "KeyPendingDeletion",
                _ => "KeyPendingImport",
            };
            OssError::new(S::CONFLICT, code, msg)
        }
        CoreError::InvalidEncryptionAlgorithm(value) => {
            OssError::new(S::BAD_REQUEST, "InvalidEncryptionAlgorithmError", msg).with("ArgumentValue", value)
        }
        CoreError::Integrity => OssError::internal("integrity check failed (details in the log)"),
        CoreError::Internal(detail) => OssError::internal(detail),
    }
}

//! One parsed request as handlers see it, and response helpers.

use std::io;

use arca_core::sse::{AES256, KMS, SM4};
use arca_core::{ByteStream, Caller, CoreError, Encryption, ObjectAttrs, SseRequest, UserMeta};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, BodyStream, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};

use crate::error::OssError;
use crate::route::Target;
use crate::server::OssConfig;
use crate::xml::XmlWriter;

/// Response body type.
pub type RespBody = UnsyncBoxBody<Bytes, io::Error>;

/// Largest XML request body read into memory.
const MAX_XML_BODY: usize = 2 * 1024 * 1024;

/// A request after routing and authentication.
pub struct Req<'a> {
    pub target: Target,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Option<Incoming>,
    pub caller: Caller,
    pub cfg: &'a OssConfig,
}

impl Req<'_> {
    /// A query parameter's value ("" for a bare name).
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A non-empty query parameter.
    pub fn q_nonempty(&self, name: &str) -> Option<&str> {
        self.q(name).filter(|v| !v.is_empty())
    }

    /// A header as text (None if absent or not visible ASCII/UTF-8).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
    }

    pub fn region(&self) -> &str {
        &self.target.region
    }

    pub fn bucket(&self) -> &str {
        self.target.bucket.as_deref().unwrap_or_default()
    }

    pub fn key(&self) -> &str {
        self.target.key.as_deref().unwrap_or_default()
    }

    /// Maps a core error to its OSS form.
    pub fn core_err(&self, e: CoreError) -> OssError {
        crate::error::from_core(e, |region| self.cfg.endpoint(region))
    }

    /// `Content-MD5` decoded; malformed → InvalidDigest.
    pub fn content_md5(&self) -> Result<Option<[u8; 16]>, OssError> {
        let Some(v) = self.header("content-md5") else {
            return Ok(None);
        };
        let bytes = B64.decode(v.trim()).map_err(|_| self.core_err(CoreError::InvalidDigest))?;
        let arr: [u8; 16] = bytes.try_into().map_err(|_| self.core_err(CoreError::InvalidDigest))?;
        Ok(Some(arr))
    }

    /// The declared body length; an upload with neither a length nor chunked
    /// encoding is refused.
    pub fn content_length(&self) -> Result<Option<u64>, OssError> {
        match self.header("content-length") {
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| OssError::invalid_argument("Content-Length is invalid.", "Content-Length", v)),
            None if self.headers.contains_key("transfer-encoding") => Ok(None),
            None => Err(OssError::new(
                StatusCode::LENGTH_REQUIRED,
                "MissingContentLength",
                "You must provide the Content-Length HTTP header.",
            )),
        }
    }

    /// The body as a stream of bytes (once).
    pub fn body_stream(&mut self) -> ByteStream {
        match self.body.take() {
            Some(body) => Box::pin(BodyStream::new(body).filter_map(|frame| async move {
                match frame {
                    Ok(f) => f.into_data().ok().map(Ok),
                    Err(e) => Some(Err(io::Error::other(e))),
                }
            })),
            None => Box::pin(futures_util::stream::empty()),
        }
    }

    /// Reads a small (XML/JSON) body, checking `Content-MD5` if sent.
    pub async fn body_bytes(&mut self) -> Result<Bytes, OssError> {
        let md5 = self.content_md5()?;
        let Some(body) = self.body.take() else {
            return Ok(Bytes::new());
        };
        let limited = http_body_util::Limited::new(body, MAX_XML_BODY);
        let bytes = limited
            .collect()
            .await
            .map_err(|_| {
                OssError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    "The request body is too large or incomplete.",
                )
            })?
            .to_bytes();
        if let Some(expected) = md5 {
            let actual = arca_core::checksum::md5(&bytes);
            if actual != expected {
                return Err(self.core_err(CoreError::InvalidDigest));
            }
        }
        Ok(bytes)
    }

    /// Object attributes from the upload headers.
    pub fn object_attrs(&self) -> ObjectAttrs {
        let std = |n: &str| self.header(n).map(str::to_owned);
        let mut user_meta: Vec<UserMeta> = self
            .headers
            .iter()
            .filter_map(|(name, value)| {
                let n = name.as_str().strip_prefix("x-oss-meta-")?;
                Some(UserMeta { name: n.to_owned(), value: value.as_bytes().to_vec() })
            })
            .collect();
        user_meta.sort_by(|a, b| a.name.cmp(&b.name));
        ObjectAttrs {
            content_type: std("content-type").unwrap_or_else(|| "application/octet-stream".into()),
            cache_control: std("cache-control"),
            content_disposition: std("content-disposition"),
            content_encoding: std("content-encoding"),
            content_language: std("content-language"),
            expires: std("expires"),
            user_meta,
            acl: std("x-oss-object-acl").unwrap_or_else(|| "default".into()),
            storage_class: std("x-oss-storage-class").unwrap_or_default(),
        }
    }

    /// The SSE settings of an upload request (`x-oss-server-side-*`).
    ///
    /// # Errors
    /// An unknown algorithm → `InvalidEncryptionAlgorithmError`; a data
    /// encryption other than `SM4`, or SSE-C headers (OSS has no SSE-C) →
    /// `InvalidArgument`.
    pub fn sse_request(&self) -> Result<SseRequest, OssError> {
        if let Some(name) =
            self.headers.keys().find(|n| n.as_str().starts_with("x-oss-server-side-encryption-customer-"))
        {
            return Err(OssError::invalid_argument(
                "Server-side encryption with customer keys is not supported.",
                name.as_str(),
                "",
            ));
        }
        let algorithm = self.header(SSE).map(str::trim).map(str::to_owned);
        if let Some(a) = algorithm.as_deref().filter(|a| ![AES256, SM4, KMS].contains(a)) {
            return Err(OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidEncryptionAlgorithmError",
                "The Encryption request you specified is not valid. Supported value: AES256/KMS/SM4",
            )
            .with("ArgumentName", SSE)
            .with("ArgumentValue", a));
        }
        let data_encryption = self.header(SSE_DATA).map(str::trim).map(str::to_owned);
        if let Some(d) = data_encryption.as_deref().filter(|d| *d != SM4) {
            return Err(OssError::invalid_argument("The data encryption algorithm must be SM4.", SSE_DATA, d));
        }
        let key_id = self.header(SSE_KEY_ID).map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned);
        Ok(SseRequest { algorithm, data_encryption, key_id })
    }

    /// UploadPart, UploadPartCopy and Complete take the upload's encryption:
    /// SSE headers there are an error.
    pub fn refuse_sse_headers(&self) -> Result<(), OssError> {
        match [SSE, SSE_DATA, SSE_KEY_ID].into_iter().find(|h| self.headers.contains_key(*h)) {
            Some(h) => Err(OssError::invalid_argument(
                "Server-side encryption is set when the multipart upload is initiated, not on its parts or completion.",
                h,
                self.header(h).unwrap_or(""),
            )),
            None => Ok(()),
        }
    }

    /// `x-oss-forbid-overwrite: true`.
    pub fn forbid_overwrite(&self) -> bool {
        self.header("x-oss-forbid-overwrite").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
    }

    /// Whether `encoding-type=url` was asked for.
    pub fn url_encoding(&self) -> bool {
        self.q("encoding-type").is_some_and(|v| v == "url")
    }

    /// Parses an integer query parameter within `range`, with a default.
    pub fn q_int(&self, name: &str, default: usize, range: std::ops::RangeInclusive<usize>) -> Result<usize, OssError> {
        match self.q_nonempty(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| OssError::invalid_argument(format!("Argument {name} is invalid."), name, v)),
        }
    }
}

const SSE: &str = "x-oss-server-side-encryption";
const SSE_DATA: &str = "x-oss-server-side-data-encryption";
const SSE_KEY_ID: &str = "x-oss-server-side-encryption-key-id";

/// The SSE response headers of an object or upload: the algorithm; for KMS
/// also the key id and, when the data is SM4-encrypted, the data algorithm.
pub fn sse_headers(mut b: http::response::Builder, enc: Option<&Encryption>) -> http::response::Builder {
    if let Some(e) = enc {
        b = b.header(SSE, &e.algorithm);
        if e.algorithm == KMS {
            b = b.header(SSE_KEY_ID, &e.key_id);
            if e.suite == arca_core::sse::SM4_SUITE_ID {
                b = b.header(SSE_DATA, SM4);
            }
        }
    }
    b
}

/// URL-encodes a name for `encoding-type=url` listings: `%XX` for everything
/// outside `A-Za-z0-9-_.~/` (never `+` for space).
pub fn url_encode_name(s: &str) -> String {
    crate::sign::uri_encode(s, true)
}

/// A response with an XML body.
pub fn xml_response(status: StatusCode, w: XmlWriter) -> Response<RespBody> {
    xml_body(Response::builder().status(status), w)
}

/// Finishes `b` (headers already set) with an XML body.
pub fn xml_body(b: http::response::Builder, w: XmlWriter) -> Response<RespBody> {
    let body = w.finish();
    b.header("content-type", "application/xml")
        .header("content-length", body.len())
        .body(full(Bytes::from(body)))
        .expect("valid response")
}

/// A response with no body.
pub fn empty(status: StatusCode) -> Response<RespBody> {
    Response::builder().status(status).header("content-length", 0).body(full(Bytes::new())).expect("valid response")
}

/// A fixed body.
pub fn full(b: Bytes) -> RespBody {
    Full::new(b).map_err(|never| match never {}).boxed_unsync()
}

/// A streamed body.
pub fn streamed(s: ByteStream) -> RespBody {
    BodyExt::boxed_unsync(StreamBody::new(s.map(|r| r.map(Frame::data))))
}

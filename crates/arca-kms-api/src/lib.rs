//! Arca's KMS API: wire-compatible with Alibaba Cloud KMS `Version=2016-01-20`
//! (spec `kms-ram.md` A2–A5), so the Alibaba KMS SDKs manage Arca's built-in
//! KMS unchanged. RPC requests (query and form parameters merged), the V1
//! HMAC-SHA1 signature with the 15-minute window and nonce replay check, JSON
//! responses and errors. Authenticated with the same access keys as the OSS API.

#![warn(missing_docs)]

mod actions;
mod server;
pub mod sign;

pub use server::{KmsApiConfig, KmsApiServer};

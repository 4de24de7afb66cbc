//! Arca's KMS API: wire-compatible with Alibaba Cloud KMS `Version=2016-01-20`
//! (spec `kms-ram.md` A2–A5), so the Alibaba KMS SDKs manage Arca's built-in
//! KMS unchanged. RPC requests (query and form parameters merged), the V1
//! HMAC-SHA1 signature with the 15-minute window and nonce replay check, JSON
//! responses and errors. Authenticated with the same access keys as the OSS API,
//! and authorized per action on the key's ARN (spec B4) for RAM users.
//!
//! The same listener answers RAM (`Version=2015-05-01`, spec Part C) so the
//! Alibaba RAM SDK manages users, groups, access keys and policies.

#![warn(missing_docs)]

mod actions;
mod authz;
mod ram;
mod server;
pub mod sign;

pub use actions::ApiError;
pub use server::{KmsApiConfig, KmsApiServer};

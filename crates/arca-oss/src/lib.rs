//! The Alibaba Cloud OSS dialect of Arca.
//!
//! Turns OSS wire requests into [`arca_core::ObjectService`] calls and their
//! results and errors back into OSS responses: addressing and operation
//! dispatch ([`route`]), signatures ([`sign`], [`auth`]), headers, XML bodies
//! and error codes. Nothing below this crate sees a header name.

#![warn(missing_docs)]

pub mod auth;
mod bucket;
pub mod error;
pub mod fmt;
mod multipart;
mod object;
mod request;
pub mod route;
mod server;
pub mod sign;
pub mod xml;

pub use server::{OssConfig, OssServer};

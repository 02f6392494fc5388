//! Storage for seqhouse engines. Every byte an engine reads or writes goes through here: local
//! paths, `file://` and `s3://` locations behind `object_store` ([`storage`]), and the discovery,
//! typing and decoding of input files ([`input`]). Engines (adapters of the `Warehouse` port)
//! share it so that they see the same files in the same order.
#![warn(missing_docs)]

pub mod input;
pub mod publish;
pub mod storage;

pub use storage::{Location, S3Options, Storage, storage_error};

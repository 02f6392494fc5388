//! Storage for seqhouse engines. Every byte an engine reads or writes goes through here: local
//! paths, `file://` and `s3://` locations behind `object_store` ([`storage`]), and the discovery,
//! typing and decoding of input files ([`input`]). Engines (adapters of the `Warehouse` port)
//! share it so that they see the same files in the same order.
#![warn(missing_docs)]

pub mod failpoint;
pub mod input;
pub mod lock;
pub mod publish;
pub mod storage;

pub use storage::{Location, S3Options, Storage, storage_error};

/// How a manifest records its input, the same wherever the command was run from: relative to
/// the output folder when both are local (`../events`), else the input's normalised URL or
/// absolute path (`s3://bucket/prefix`, `/data/events`).
pub fn manifest_input_location(input: &Location, output: &Location) -> String {
    let (Some(input_path), Some(output_path)) = (&input.local, &output.local) else {
        return input.show(input.path());
    };
    let from: Vec<_> = output_path.components().collect();
    let to: Vec<_> = input_path.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); from.len() - common];
    parts.extend(to[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned()));
    if parts.is_empty() { ".".to_string() } else { parts.join("/") }
}

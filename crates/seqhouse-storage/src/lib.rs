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
pub mod vocab;

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

/// The manifest of the published output at `output`, with the output's location: what every
/// reader of an output starts from. A folder without one is not (yet) a published output.
pub fn read_manifest(storage: &Storage, output: &str) -> seqhouse_core::Result<(Location, seqhouse_core::Manifest)> {
    use seqhouse_core::{Error, MANIFEST_FILE};
    let location = storage.locate(output)?;
    let manifest_location = location.child(MANIFEST_FILE);
    let json = storage.get(&manifest_location).map_err(|_| Error::InputNotFound {
        location: output.to_string(),
        hint: format!("no {MANIFEST_FILE} there: it is not a published seqhouse output (or not yet)"),
    })?;
    let manifest = serde_json::from_slice(&json)
        .map_err(|e| Error::corrupt_message(&manifest_location.shown, format!("not a seqhouse manifest: {e}")))?;
    Ok((location, manifest))
}

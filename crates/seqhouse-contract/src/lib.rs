//! The contract every seqhouse `Warehouse` adapter must pass, as plain functions over
//! `&dyn Warehouse` and a [`Fixture`] that knows where the adapter's storage is.
//!
//! An adapter's tests call [`contract_tests!`], which expands into one `#[test]` per case, so a
//! failure names the case. Cases that depend on a capability (ties in input order) check
//! [`seqhouse_core::Capabilities`] and test the weaker promise when it is off.
//!
//! [`reference`](mod@reference) is an independent, naive sequencer the cases (and the kernel's property tests)
//! compare against.

pub mod cases;
pub mod faults;
pub mod fixture;
pub mod reference;
pub mod s3;

pub use fixture::{Fixture, LocalFixture, Output};

/// The real logs kept in the repository's `testdata/` folder (ASSISTments 2015, MovieLens
/// latest-small; see its README), for every crate's tests: a fresh clone needs nothing beside it.
pub fn real_data() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
    assert!(dir.join("assist2015/events.parquet").exists(), "the test data is missing at {}", dir.display());
    dir
}
pub use s3::S3Fixture;

/// Expands into one `#[test]` per contract case.
///
/// `$warehouse` is an expression giving a `Box<dyn Warehouse>`; `$fixture` one giving a
/// `Box<dyn Fixture>` (a fresh one per test).
#[macro_export]
macro_rules! contract_tests {
    ($warehouse:expr, $fixture:expr; $($case:ident),+ $(,)?) => {
        $(
            #[test]
            fn $case() {
                let warehouse: Box<dyn seqhouse_core::Warehouse> = $warehouse;
                let fixture: Box<dyn $crate::Fixture> = $fixture;
                $crate::cases::$case(warehouse.as_ref(), fixture.as_ref());
            }
        )+
    };
    ($warehouse:expr, $fixture:expr) => {
        $crate::contract_tests!($warehouse, $fixture;
            every_mode_and_padding_matches_reference,
            multi_column_keys_match_reference,
            ties_follow_capability,
            types_and_pads_round_trip,
            feature_nulls_kept_or_filled,
            null_keys_error_or_drop,
            min_length_drops_short_windows,
            empty_input_gives_empty_output,
            missing_column_is_named,
            bad_pad_value_is_named,
            unsupported_type_is_named,
            existing_output_needs_overwrite,
            failed_run_publishes_nothing,
            subsets_go_to_their_folders,
            splits_match_the_reference,
            filters_and_time_deltas_match_the_reference,
            bad_time_delta_is_named,
            sessions_match_the_reference,
            vocabularies_match_the_reference,
            vocabularies_fitted_on_the_first_subset_apply_to_the_rest,
            vocabularies_of_timestamps_are_exact_or_refused,
            k_core_matches_the_reference,
            manifest_describes_the_job,
            same_input_same_output,
            explain_does_nothing,
            widening_between_files_is_exact_or_refused,
        );
    };
}

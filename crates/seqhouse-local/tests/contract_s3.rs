//! The local engine against the shared Warehouse contract, with input and output on S3 (the
//! local S3 server that scripts/test starts).

use seqhouse_contract::s3::TestS3;
use seqhouse_contract::{S3Fixture, contract_tests};
use seqhouse_local::{LocalConfig, LocalWarehouse, S3Options};

fn warehouse() -> Box<LocalWarehouse> {
    let s3 = S3Options { endpoint: Some(TestS3::from_env().endpoint), ..S3Options::default() };
    // Small parts so multi-part outputs are exercised too.
    Box::new(
        LocalWarehouse::new(LocalConfig { threads: Some(2), rows_per_part: Some(7), s3, ..LocalConfig::default() })
            .unwrap(),
    )
}

contract_tests!(warehouse(), Box::new(S3Fixture::new()));

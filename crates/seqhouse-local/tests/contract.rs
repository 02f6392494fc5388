//! The local engine against the shared Warehouse contract.

use seqhouse_contract::{LocalFixture, contract_tests};
use seqhouse_local::{LocalConfig, LocalWarehouse};

fn warehouse() -> Box<LocalWarehouse> {
    // Small parts so multi-part outputs are exercised too.
    Box::new(
        LocalWarehouse::new(LocalConfig { threads: Some(2), rows_per_part: Some(7), ..LocalConfig::default() })
            .unwrap(),
    )
}

contract_tests!(warehouse(), Box::new(LocalFixture::new()));

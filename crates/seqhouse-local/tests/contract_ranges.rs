//! The local engine against the shared Warehouse contract when it splits every job by entity
//! range: in memory, and spilled to disk.

use seqhouse_contract::{LocalFixture, contract_tests};
use seqhouse_local::{LocalConfig, LocalWarehouse};

/// Ranges of about 5 rows, held in memory.
mod in_memory_ranges {
    use super::*;

    fn warehouse() -> Box<LocalWarehouse> {
        let config = LocalConfig { threads: Some(2), rows_per_part: Some(7), range_rows: 5, ..LocalConfig::default() };
        Box::new(LocalWarehouse::new(config).unwrap())
    }

    contract_tests!(warehouse(), Box::new(LocalFixture::new()));
}

/// A one-byte memory limit: every job spills, one range per entity or so.
mod spilled {
    use super::*;

    fn warehouse() -> Box<LocalWarehouse> {
        let config =
            LocalConfig { threads: Some(2), rows_per_part: Some(7), memory_limit: Some(1), ..LocalConfig::default() };
        Box::new(LocalWarehouse::new(config).unwrap())
    }

    contract_tests!(warehouse(), Box::new(LocalFixture::new()));
}

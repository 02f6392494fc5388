//! Integration tests of the `seqhouse` command line (one test binary, see STYLE.md).

mod bad_input;
mod cli;
mod e2e;
mod real_data;
mod s3;
mod safety;
mod spark;
mod splits;
mod util;

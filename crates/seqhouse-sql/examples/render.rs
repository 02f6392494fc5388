//! Prints the SELECT for a small spec over a table called `events` (for trying the SQL by hand):
//! `cargo run -p seqhouse-sql --example render -- trino sliding post 5 2`
use arrow::datatypes::{DataType, Field, Schema};
use seqhouse_core::{ResolvedSpec, SequenceSpec};
use seqhouse_sql::{Dialect, select};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dialect = if args[1] == "spark" { Dialect::Spark } else { Dialect::Trino };
    let mut spec = SequenceSpec::new(
        vec!["user_id".into()],
        vec!["log_order".into()],
        vec!["skill_id=-1".parse().unwrap(), "correct=-1".parse().unwrap()],
        args[4].parse().unwrap(),
    );
    spec.mode = args[2].parse().unwrap();
    spec.padding = args[3].parse().unwrap();
    if spec.mode == seqhouse_core::Mode::Sliding {
        spec.stride = Some(args[5].parse().unwrap());
    }
    let schema = Schema::new(vec![
        Field::new("user_id", DataType::Int64, true),
        Field::new("log_order", DataType::Int64, true),
        Field::new("skill_id", DataType::Int64, true),
        Field::new("correct", DataType::Int64, true),
    ]);
    let resolved = ResolvedSpec::new(&spec, &schema, "events").unwrap();
    println!("{}", select(&resolved, &seqhouse_sql::Source::new("\"events\""), dialect).unwrap());
}

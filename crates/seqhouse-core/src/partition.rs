//! Splitting a job into ranges of entities, for jobs larger than memory.
//!
//! Ranges follow the kernel's entity order (the order of arrow's row format over the entity
//! columns) and an entity never straddles two ranges. Sequencing the ranges one after another,
//! each with [`crate::Sequencer`], and concatenating their windows therefore gives exactly the
//! windows of the whole job, in the same order: the output does not depend on the split.

use arrow::array::ArrayRef;
use arrow::row::{OwnedRow, RowConverter, SortField};

use crate::error::{Error, Result};
use crate::order::{has_fixed_key, key_column};

/// Boundaries that cut the entity order into ranges: range `i` holds the entities above bound
/// `i - 1` and up to bound `i`.
pub struct EntityRanges {
    bounds: Bounds,
}

enum Bounds {
    /// One entity column of a fixed-width type: its order-preserving `u64` keys.
    Keys(Vec<u64>),
    /// Anything else: arrow's row format, whose byte order is the entity order.
    Rows(RowConverter, Vec<OwnedRow>),
}

impl EntityRanges {
    /// Picks up to `ranges` ranges holding about equally many rows, from the entity columns of
    /// a sample of the input's rows (without nulls). Fewer ranges result when the sample has
    /// fewer distinct entities.
    pub fn from_sample(sample: &[ArrayRef], ranges: usize) -> Result<Self> {
        let rows = sample.first().map_or(0, |c| c.len());
        // The sample's values at its quantiles, duplicates removed.
        let quantiles = |ranges: usize| -> Vec<usize> {
            let mut at: Vec<usize> = (1..ranges).map(|i| i * rows / ranges).filter(|&i| i < rows).collect();
            at.dedup();
            at
        };
        if let [column] = sample
            && has_fixed_key(column.data_type())
        {
            let mut keys = key_column(column)?;
            keys.sort_unstable();
            let mut bounds: Vec<u64> = quantiles(ranges).into_iter().map(|i| keys[i]).collect();
            bounds.dedup();
            // A bound at the largest key would leave the last range empty.
            bounds.retain(|b| Some(b) < keys.last());
            return Ok(EntityRanges { bounds: Bounds::Keys(bounds) });
        }
        let fields = sample.iter().map(|c| SortField::new(c.data_type().clone())).collect();
        let converter = RowConverter::new(fields).map_err(Error::internal)?;
        let encoded = converter.convert_columns(sample).map_err(Error::internal)?;
        let mut sorted: Vec<_> = (0..rows).map(|i| encoded.row(i)).collect();
        sorted.sort_unstable();
        let mut bounds: Vec<OwnedRow> = quantiles(ranges).into_iter().map(|i| sorted[i].owned()).collect();
        bounds.dedup();
        bounds.retain(|b| Some(&b.row()) < sorted.last());
        drop(sorted);
        Ok(EntityRanges { bounds: Bounds::Rows(converter, bounds) })
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        match &self.bounds {
            Bounds::Keys(bounds) => bounds.len() + 1,
            Bounds::Rows(_, bounds) => bounds.len() + 1,
        }
    }

    /// Always false: there is at least one range.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The range of every row of `entities` (columns in the sample's order, without nulls).
    pub fn assign(&self, entities: &[ArrayRef]) -> Result<Vec<u32>> {
        Ok(match &self.bounds {
            Bounds::Keys(bounds) => {
                key_column(&entities[0])?.into_iter().map(|k| bounds.partition_point(|&b| b < k) as u32).collect()
            }
            Bounds::Rows(converter, bounds) => {
                let encoded = converter.convert_columns(entities).map_err(Error::internal)?;
                encoded.iter().map(|row| bounds.partition_point(|b| b.row() < row) as u32).collect()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray};

    use super::*;

    fn ints(values: impl IntoIterator<Item = i64>) -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(values))
    }

    /// Ranges must be contiguous in the entity order, hold whole entities and cover every row.
    fn assert_contiguous(ranges: &EntityRanges, entities: &[ArrayRef]) {
        let assigned = ranges.assign(entities).unwrap();
        let fields = entities.iter().map(|c| SortField::new(c.data_type().clone())).collect();
        let encoded = RowConverter::new(fields).unwrap().convert_columns(entities).unwrap();
        for a in 0..assigned.len() {
            assert!((assigned[a] as usize) < ranges.len());
            for b in 0..assigned.len() {
                let (ra, rb) = (encoded.row(a), encoded.row(b));
                if ra == rb {
                    assert_eq!(assigned[a], assigned[b], "one entity, two ranges");
                } else if ra < rb {
                    assert!(assigned[a] <= assigned[b], "ranges out of entity order");
                }
            }
        }
    }

    #[test]
    fn ranges_balance_rows_and_keep_entities_whole() {
        // 1000 rows over entities -20..20 (negative keys check the signed order).
        let entities = ints((0..1000).map(|i| (i * 7919 % 40) - 20));
        let ranges = EntityRanges::from_sample(std::slice::from_ref(&entities), 4).unwrap();
        assert_eq!(ranges.len(), 4);
        let assigned = ranges.assign(std::slice::from_ref(&entities)).unwrap();
        for r in 0..4 {
            let rows = assigned.iter().filter(|&&a| a == r).count();
            assert!((200..=300).contains(&rows), "range {r} holds {rows} of 1000 rows");
        }
        assert_contiguous(&ranges, &[entities]);
    }

    #[test]
    fn strings_floats_and_several_columns_use_the_row_order() {
        let names: ArrayRef = Arc::new(StringArray::from_iter_values((0..300).map(|i| format!("u{}", (i * 37) % 23))));
        let scores: ArrayRef = Arc::new(Float64Array::from_iter_values((0..300).map(|i| ((i % 5) as f64) - 2.5)));
        for columns in [vec![names.clone()], vec![scores.clone()], vec![names, scores]] {
            let ranges = EntityRanges::from_sample(&columns, 3).unwrap();
            assert!(ranges.len() >= 2, "{} ranges", ranges.len());
            assert_contiguous(&ranges, &columns);
        }
    }

    #[test]
    fn fewer_entities_than_ranges_give_fewer_ranges() {
        let one = ints([5; 50]);
        assert_eq!(EntityRanges::from_sample(std::slice::from_ref(&one), 8).unwrap().len(), 1);
        let empty = ints([]);
        let ranges = EntityRanges::from_sample(std::slice::from_ref(&empty), 8).unwrap();
        assert_eq!(ranges.len(), 1);
        // Entities never seen in the sample still land in a range.
        assert_eq!(ranges.assign(&[ints([1, -1, i64::MAX])]).unwrap(), vec![0, 0, 0]);
    }
}

//! The k-core filter (`--k-core COL=K`): repeatedly drop the events of values of COL seen
//! fewer than K times, and the entities left with fewer than `--min-events` events, until
//! nothing changes.
//!
//! The fixed point is global (a value's count spans every entity), so a job split into entity
//! ranges first collects every range's events compactly ([`CoreEvents`]: a value code per
//! event, 4 bytes), finds the surviving values ([`CoreValues`]) over all of them, and then
//! sequences each range keeping the events of those values. That is exact: the entities the
//! fixed point keeps are those with at least `--min-events` events of surviving values (an
//! entity dropped on the way had fewer, and values only ever drop out), so the surviving values
//! alone decide every event.

use std::collections::{HashMap, HashSet};

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};

use crate::error::{Error, Result};

/// Values in the row format, as bytes that identify them.
fn converter(data_type: &DataType) -> Result<RowConverter> {
    RowConverter::new(vec![SortField::new(data_type.clone())]).map_err(Error::internal)
}

/// Every kept event's value of the k-core column, by entity, over the ranges collected so far.
pub struct CoreEvents {
    converter: RowConverter,
    codes: HashMap<Box<[u8]>, u32>,
    /// The bytes of each code, and whether the value is null (nulls are never counted as a
    /// value: an event with a null is kept or dropped with its entity only).
    values: Vec<Box<[u8]>>,
    /// Per event, its value's code (`u32::MAX` for null), entities one after the other.
    events: Vec<u32>,
    /// Where each entity's events end in `events`.
    entity_ends: Vec<usize>,
}

const NULL: u32 = u32::MAX;

impl CoreEvents {
    /// None yet, for a column of `data_type`.
    pub fn new(data_type: &DataType) -> Result<Self> {
        Ok(CoreEvents {
            converter: converter(data_type)?,
            codes: HashMap::new(),
            values: Vec::new(),
            events: Vec::new(),
            entity_ends: Vec::new(),
        })
    }

    /// Adds one range's events: `values` in sorted order, entity `e` holding positions
    /// `entity_starts[e]..entity_starts[e + 1]`.
    pub fn add(&mut self, values: &ArrayRef, entity_starts: &[usize]) -> Result<()> {
        let rows = self.converter.convert_columns(std::slice::from_ref(values)).map_err(Error::internal)?;
        let base = self.events.len();
        for (i, row) in rows.iter().enumerate() {
            let code = if values.is_null(i) {
                NULL
            } else if let Some(&code) = self.codes.get(row.as_ref()) {
                code
            } else {
                let code = self.values.len() as u32;
                self.values.push(row.as_ref().into());
                self.codes.insert(row.as_ref().into(), code);
                code
            };
            self.events.push(code);
        }
        self.entity_ends.extend(entity_starts.iter().skip(1).map(|&end| base + end));
        Ok(())
    }

    /// The values that survive the fixed point of dropping values with fewer than `k` events
    /// of kept entities, and entities with fewer than `min_events` events of kept values.
    pub fn fixed_point(self, k: u64, min_events: usize) -> CoreValues {
        let mut value_alive = vec![true; self.values.len()];
        let mut entity_alive = vec![true; self.entity_ends.len()];
        loop {
            let mut counts = vec![0u64; self.values.len()];
            let mut start = 0;
            for (e, &end) in self.entity_ends.iter().enumerate() {
                if entity_alive[e] {
                    for &code in &self.events[start..end] {
                        if code != NULL {
                            counts[code as usize] += 1;
                        }
                    }
                }
                start = end;
            }
            let mut changed = false;
            for (alive, &count) in value_alive.iter_mut().zip(&counts) {
                if *alive && count < k {
                    *alive = false;
                    changed = true;
                }
            }
            let mut start = 0;
            for (e, &end) in self.entity_ends.iter().enumerate() {
                if entity_alive[e] {
                    let kept = self.events[start..end]
                        .iter()
                        .filter(|&&code| code == NULL || value_alive[code as usize])
                        .count();
                    if kept < min_events.max(1) {
                        entity_alive[e] = false;
                        changed = true;
                    }
                }
                start = end;
            }
            if !changed {
                break;
            }
        }
        let kept =
            self.values.into_iter().zip(value_alive).filter_map(|(bytes, alive)| alive.then_some(bytes)).collect();
        CoreValues { converter: self.converter, kept }
    }
}

/// The values of the k-core column that survive the filter over the whole input.
pub struct CoreValues {
    converter: RowConverter,
    kept: HashSet<Box<[u8]>>,
}

impl CoreValues {
    /// Whether each of `values` survives (a null does: it is no value of the column).
    pub fn keeps(&self, values: &ArrayRef) -> Result<Vec<bool>> {
        let rows = self.converter.convert_columns(std::slice::from_ref(values)).map_err(Error::internal)?;
        Ok(rows.iter().enumerate().map(|(i, row)| values.is_null(i) || self.kept.contains(row.as_ref())).collect())
    }

    /// How many values survive.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether none does.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;

    use super::*;

    #[test]
    fn dropping_an_entity_can_drop_a_value_in_a_later_round() {
        // Entity 0: items 1, 1, 2; entity 1: items 2, 3; entity 2: items 1, 3.
        let values: ArrayRef = Arc::new(Int64Array::from(vec![1, 1, 2, 2, 3, 1, 3]));
        let mut events = CoreEvents::new(&DataType::Int64).unwrap();
        events.add(&values, &[0, 3, 5, 7]).unwrap();
        // k = 2: item counts 3, 2, 2 keep all; min_events 2 keeps every entity: nothing drops.
        let mut again = CoreEvents::new(&DataType::Int64).unwrap();
        again.add(&values, &[0, 3, 5, 7]).unwrap();
        assert_eq!(again.fixed_point(2, 2).len(), 3);
        // k = 3: items 2 and 3 drop; entity 1 is left with none, entity 2 with one (< 2):
        // item 1 falls to 2 events (< 3) in the next round, and nothing is left.
        let core = events.fixed_point(3, 2);
        assert!(core.is_empty());
        assert_eq!(core.keeps(&values).unwrap(), vec![false; 7]);
    }
}

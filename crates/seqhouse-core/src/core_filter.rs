//! The k-core filter (`--k-core COL=K`): repeatedly drop the events of values of COL seen
//! fewer than K times, the sessions left with fewer than `--min-session-length` events (with
//! `--session-gap`) and the entities left with fewer than `--min-events` events, until
//! nothing changes.
//!
//! The fixed point is global (a value's count spans every entity), so a job split into entity
//! ranges first collects every range's events compactly ([`CoreEvents`]: a value code per
//! event, 4 bytes, and 8 bytes per session), finds the surviving values ([`CoreValues`]) over
//! all of them, and then sequences each range keeping the events of those values. That is
//! exact: the sessions the fixed point keeps are those with at least `--min-session-length`
//! events of surviving values, and the entities those with at least `--min-events` events of
//! surviving values in such sessions (one dropped on the way had fewer, and values only ever
//! drop out), so the surviving values alone decide every event. Sessions are the ones cut
//! before the filter: dropping an event never splits or joins them.

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
    /// Per event, its value's code (`u32::MAX` for null), entities one after the other, each
    /// entity's sessions one after the other.
    events: Vec<u32>,
    /// Where each session's events end in `events` (an entity without sessions is one).
    session_ends: Vec<usize>,
    /// Where each entity's sessions end in `session_ends`.
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
            session_ends: Vec::new(),
            entity_ends: Vec::new(),
        })
    }

    /// Adds one range's events: `values` in sorted order, entity `e` holding positions
    /// `entity_starts[e]..entity_starts[e + 1]`, and `sessions` each position's session
    /// within its entity (empty without sessions: each entity is one).
    pub fn add(&mut self, values: &ArrayRef, entity_starts: &[usize], sessions: &[u32]) -> Result<()> {
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
        for run in entity_starts.windows(2) {
            for p in run[0] + 1..run[1] {
                if sessions.get(p) != sessions.get(p - 1) {
                    self.session_ends.push(base + p);
                }
            }
            if run[0] < run[1] {
                self.session_ends.push(base + run[1]);
            }
            self.entity_ends.push(self.session_ends.len());
        }
        Ok(())
    }

    /// The values that survive the fixed point of dropping values with fewer than `k` events
    /// in kept sessions of kept entities, sessions with fewer than `min_session_length` events
    /// of kept values, and entities with fewer than `min_events` events of kept values in kept
    /// sessions.
    pub fn fixed_point(self, k: u64, min_session_length: usize, min_events: usize) -> CoreValues {
        let mut value_alive = vec![true; self.values.len()];
        let mut session_alive = vec![true; self.session_ends.len()];
        let session_starts = || std::iter::once(0).chain(self.session_ends.iter().copied());
        loop {
            let mut counts = vec![0u64; self.values.len()];
            for ((&alive, start), &end) in session_alive.iter().zip(session_starts()).zip(&self.session_ends) {
                if alive {
                    for &code in &self.events[start..end] {
                        if code != NULL {
                            counts[code as usize] += 1;
                        }
                    }
                }
            }
            let mut changed = false;
            for (alive, &count) in value_alive.iter_mut().zip(&counts) {
                if *alive && count < k {
                    *alive = false;
                    changed = true;
                }
            }
            // Each session's events of kept values (0 once it is dropped), then its entity's.
            let kept: Vec<usize> = (session_alive.iter().zip(session_starts()).zip(&self.session_ends))
                .map(|((&alive, start), &end)| {
                    let kept = |code: &&u32| **code == NULL || value_alive[**code as usize];
                    if alive { self.events[start..end].iter().filter(kept).count() } else { 0 }
                })
                .collect();
            for (alive, &kept) in session_alive.iter_mut().zip(&kept) {
                if *alive && kept < min_session_length.max(1) {
                    *alive = false;
                    changed = true;
                }
            }
            let mut first = 0;
            for &last in &self.entity_ends {
                let sessions = first..last;
                let events: usize = sessions.clone().filter(|&s| session_alive[s]).map(|s| kept[s]).sum();
                if events < min_events && sessions.clone().any(|s| session_alive[s]) {
                    session_alive[sessions].fill(false);
                    changed = true;
                }
                first = last;
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
        events.add(&values, &[0, 3, 5, 7], &[]).unwrap();
        // k = 2: item counts 3, 2, 2 keep all; min_events 2 keeps every entity: nothing drops.
        let mut again = CoreEvents::new(&DataType::Int64).unwrap();
        again.add(&values, &[0, 3, 5, 7], &[]).unwrap();
        assert_eq!(again.fixed_point(2, 1, 2).len(), 3);
        // k = 3: items 2 and 3 drop; entity 1 is left with none, entity 2 with one (< 2):
        // item 1 falls to 2 events (< 3) in the next round, and nothing is left.
        let core = events.fixed_point(3, 1, 2);
        assert!(core.is_empty());
        assert_eq!(core.keeps(&values).unwrap(), vec![false; 7]);
    }

    #[test]
    fn a_session_left_short_drops_with_its_values_in_a_later_round() {
        // Entity 0: sessions [1, 1, 2] and [3, 3, 3]; entity 1: one session [1, 2, 3].
        let values: ArrayRef = Arc::new(Int64Array::from(vec![1, 1, 2, 3, 3, 3, 1, 2, 3]));
        let sessions = [0, 0, 0, 1, 1, 1, 0, 0, 0];
        let core = |k, min_session_length| {
            let mut events = CoreEvents::new(&DataType::Int64).unwrap();
            events.add(&values, &[0, 6, 9], &sessions).unwrap();
            events.fixed_point(k, min_session_length, 1)
        };
        // k = 2, sessions of at least 2: every value has 2 or more events, nothing drops.
        assert_eq!(core(2, 2).len(), 3);
        // k = 3: item 2 (2 events) drops; every session keeps 2 or more events; 1 and 3 stay.
        assert_eq!(core(3, 2).keeps(&values).unwrap(), [true, true, false, true, true, true, true, false, true]);
        // Sessions of at least 3: without item 2, entity 0's first session and entity 1's
        // hold two events each and drop, which leaves item 1 with none: only item 3 stays.
        assert_eq!(core(3, 3).keeps(&values).unwrap(), [false, false, false, true, true, true, false, false, true]);
        // One session per entity instead: entity 0 keeps five events, item 1 keeps three.
        let mut whole = CoreEvents::new(&DataType::Int64).unwrap();
        whole.add(&values, &[0, 6, 9], &[]).unwrap();
        assert_eq!(whole.fixed_point(3, 3, 1).len(), 1, "entity 1 (two events) drops, then item 1");
    }
}

//! The sort at the heart of the kernel: input positions in (entity, order-by, input position)
//! order, and where each entity's run of events starts.
//!
//! Comparing Arrow's row format (`memcmp` of encoded keys) for every pair took two thirds of a
//! 10M-row job. Instead every key column becomes an order-preserving `u64` per row (integers,
//! dates and timestamps with the sign bit flipped, floats by total order, strings and other
//! types by their rank among the column's distinct values), and the sort runs in two steps:
//!
//! 1. a counting sort by entity (entities numbered with a hash map, then ranked), which groups
//!    each entity's events and keeps them in input order;
//! 2. a sort of each entity's (short, often nearly ordered) run by its order-by keys, runs in
//!    parallel. Positions break ties, so ties keep input order.
//!
//! The result is a total order, so it is the same for any thread count.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::*;
use arrow::row::{RowConverter, SortField};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Positions sorted by (entity, order-by keys, position), and the start of each entity's run
/// (plus a final `len` sentinel).
pub(crate) struct Ordered {
    pub(crate) order: Vec<u32>,
    pub(crate) entity_starts: Vec<usize>,
}

const SIGN: u64 = 1 << 63;

/// Order-preserving image of a key column without nulls: `a < b` iff `key[a] < key[b]`.
pub(crate) fn key_column(column: &ArrayRef) -> Result<Vec<u64>> {
    fn signed<T: ArrowPrimitiveType>(column: &ArrayRef) -> Vec<u64>
    where
        T::Native: Into<i64>,
    {
        column.as_primitive::<T>().values().iter().map(|&v| (v.into() as u64) ^ SIGN).collect()
    }
    fn unsigned<T: ArrowPrimitiveType>(column: &ArrayRef) -> Vec<u64>
    where
        T::Native: Into<u64>,
    {
        column.as_primitive::<T>().values().iter().map(|&v| v.into()).collect()
    }
    // IEEE bits made monotonic in f64::total_cmp order (the order the row format uses too).
    fn float_bits(bits: u64) -> u64 {
        if bits & SIGN != 0 { !bits } else { bits | SIGN }
    }
    debug_assert_eq!(column.null_count(), 0, "null keys are removed before sorting");
    Ok(match column.data_type() {
        DataType::Int8 => signed::<Int8Type>(column),
        DataType::Int16 => signed::<Int16Type>(column),
        DataType::Int32 => signed::<Int32Type>(column),
        DataType::Int64 => signed::<Int64Type>(column),
        DataType::Date32 => signed::<Date32Type>(column),
        DataType::Date64 => signed::<Date64Type>(column),
        DataType::Timestamp(TimeUnit::Second, _) => signed::<TimestampSecondType>(column),
        DataType::Timestamp(TimeUnit::Millisecond, _) => signed::<TimestampMillisecondType>(column),
        DataType::Timestamp(TimeUnit::Microsecond, _) => signed::<TimestampMicrosecondType>(column),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => signed::<TimestampNanosecondType>(column),
        DataType::UInt8 => unsigned::<UInt8Type>(column),
        DataType::UInt16 => unsigned::<UInt16Type>(column),
        DataType::UInt32 => unsigned::<UInt32Type>(column),
        DataType::UInt64 => unsigned::<UInt64Type>(column),
        DataType::Float32 => {
            column.as_primitive::<Float32Type>().values().iter().map(|&v| float_bits((v as f64).to_bits())).collect()
        }
        DataType::Float64 => {
            column.as_primitive::<Float64Type>().values().iter().map(|&v| float_bits(v.to_bits())).collect()
        }
        DataType::Boolean => column.as_boolean().values().iter().map(u64::from).collect(),
        _ => ranks(column)?,
    })
}

/// Whether [`key_column`] maps each value of this type to a fixed `u64` (rather than to a rank
/// that depends on the other values in the column).
pub(crate) fn has_fixed_key(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Boolean
    )
}

/// Each row's rank among the column's distinct values, in the column's sort order (strings and
/// any other type): one hash pass over the row-format keys, then a sort of the distinct values.
fn ranks(column: &ArrayRef) -> Result<Vec<u64>> {
    let converter = RowConverter::new(vec![SortField::new(column.data_type().clone())]).map_err(Error::internal)?;
    let rows = converter.convert_columns(std::slice::from_ref(column)).map_err(Error::internal)?;
    Ok(dense_ranks::<&[u8], RandomState>((0..rows.num_rows()).map(|i| rows.row(i).data())))
}

/// Each key's rank among the distinct keys, in key order: keys are numbered as first seen with
/// a hash map (hasher `S`), the distinct keys sorted, and every key mapped to its rank.
fn dense_ranks<K, S>(keys: impl Iterator<Item = K>) -> Vec<u64>
where
    K: Hash + Eq + Ord + Clone + Sync,
    S: BuildHasher + Default,
{
    let mut ids: HashMap<K, u32, S> = HashMap::default();
    let mut distinct: Vec<K> = Vec::new();
    let first_seen: Vec<u32> = keys
        .map(|key| {
            *ids.entry(key).or_insert_with_key(|key| {
                distinct.push(key.clone());
                (distinct.len() - 1) as u32
            })
        })
        .collect();
    drop(ids);
    let mut by_value: Vec<u32> = (0..distinct.len() as u32).collect();
    by_value.par_sort_unstable_by(|&a, &b| distinct[a as usize].cmp(&distinct[b as usize]));
    let mut rank_of = vec![0u64; distinct.len()];
    for (rank, &id) in by_value.iter().enumerate() {
        rank_of[id as usize] = rank as u64;
    }
    first_seen.into_iter().map(|id| rank_of[id as usize]).collect()
}

/// A multiplicative hash for integer keys: the default SipHash costs more than the rest of the
/// grouping, and these keys are not attacker-chosen in a way that matters for a batch job. The
/// product is rotated so that the low bits, which pick a hash table's bucket, come from its well
/// mixed high bits: keys whose low bits are all zero (float bit patterns, round numbers) would
/// otherwise share buckets. Also used by `seqhouse-local`'s Parquet dictionaries.
#[derive(Default)]
pub struct MulHasher(u64);

impl Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0 ^ value).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(26);
    }
}

/// One `u64` per row that orders rows by all of `columns` lexicographically: the single column's
/// key, or for several columns the rank of the row's tuple of keys.
fn entity_keys(columns: &[ArrayRef]) -> Result<Vec<u64>> {
    let mut keys: Vec<Vec<u64>> = columns.par_iter().map(key_column).collect::<Result<_>>()?;
    if keys.len() == 1 {
        return Ok(keys.pop().unwrap_or_default());
    }
    let rows = keys.first().map_or(0, Vec::len);
    let tuples = (0..rows).map(|i| keys.iter().map(|k| k[i]).collect::<Vec<u64>>());
    Ok(dense_ranks::<Vec<u64>, BuildHasherDefault<MulHasher>>(tuples))
}

/// Sorts positions `0..rows` by (entity, order-by, position). `entities` and `orders` hold no
/// nulls and have `rows` rows.
pub(crate) fn order_rows(entities: &[ArrayRef], orders: &[ArrayRef], rows: usize) -> Result<Ordered> {
    if rows == 0 {
        return Ok(Ordered { order: Vec::new(), entity_starts: vec![0] });
    }
    // 1. Group by entity, keeping input order inside each entity.
    let entity = entity_keys(entities)?;
    let (mut order, entity_starts) = group_by_key(&entity);
    drop(entity);

    // 2. Order each entity's run by the order-by keys; positions (ascending so far) break ties.
    let keys: Vec<Vec<u64>> = orders.par_iter().map(key_column).collect::<Result<_>>()?;
    let mut runs: Vec<&mut [u32]> = Vec::with_capacity(entity_starts.len() - 1);
    let mut rest = order.as_mut_slice();
    for pair in entity_starts.windows(2) {
        let (run, tail) = rest.split_at_mut(pair[1] - pair[0]);
        runs.push(run);
        rest = tail;
    }
    runs.into_par_iter().with_min_len(64).for_each_init(Vec::new, |scratch, run| sort_run(run, &keys, scratch));
    Ok(Ordered { order, entity_starts })
}

/// A stable counting sort of positions by `keys`: rows of each distinct key together, keys in
/// ascending order, positions ascending within a key. Returns the positions and the start of
/// each key's run (plus a final `len` sentinel).
///
/// Entities are far fewer than rows, so numbering them with a hash map and scattering positions
/// into their buckets is linear and touches little memory; a comparison sort of (key, position)
/// pairs cost three times as much on 10M rows.
#[allow(unsafe_code)] // the scatter writes disjoint slots without bounds checks
fn group_by_key(keys: &[u64]) -> (Vec<u32>, Vec<usize>) {
    // Fixed chunks (not one per thread), so the work split never depends on the thread count.
    let chunk = keys.len().div_ceil(64).max(1 << 16);
    // 1. Per chunk, in parallel: number its distinct keys, and give each row its local number.
    let locals: Vec<(Vec<u64>, Vec<u32>)> = keys
        .par_chunks(chunk)
        .map(|rows| {
            let mut ids: HashMap<u64, u32, BuildHasherDefault<MulHasher>> = HashMap::default();
            let mut distinct = Vec::new();
            let local: Vec<u32> = rows
                .iter()
                .map(|&key| {
                    *ids.entry(key).or_insert_with(|| {
                        distinct.push(key);
                        (distinct.len() - 1) as u32
                    })
                })
                .collect();
            (distinct, local)
        })
        .collect();
    // 2. Every distinct key in order, and each chunk's local numbers mapped to global ranks.
    let mut all: Vec<u64> = locals.iter().flat_map(|(distinct, _)| distinct.iter().copied()).collect();
    all.par_sort_unstable();
    all.dedup();
    let rank = |key: u64| all.binary_search(&key).expect("every key is among the distinct keys") as u32;
    let ranked: Vec<(Vec<u32>, Vec<u32>)> = locals
        .into_par_iter()
        .map(|(distinct, local)| {
            let to_rank: Vec<u32> = distinct.iter().map(|&key| rank(key)).collect();
            let rows: Vec<u32> = local.iter().map(|&id| to_rank[id as usize]).collect();
            let mut counts = vec![0u32; all.len()];
            for &r in &rows {
                counts[r as usize] += 1;
            }
            (rows, counts)
        })
        .collect();
    // 3. Where each key's run starts, and where each chunk writes inside each run: chunks in
    //    input order, so positions stay ascending within a key (a stable counting sort).
    let mut starts = vec![0usize; all.len() + 1];
    for (_, counts) in &ranked {
        for (k, &c) in counts.iter().enumerate() {
            starts[k + 1] += c as usize;
        }
    }
    for k in 1..starts.len() {
        starts[k] += starts[k - 1];
    }
    let mut cursor = starts.clone();
    let offsets: Vec<Vec<usize>> = ranked
        .iter()
        .map(|(_, counts)| {
            let offset = cursor[..all.len()].to_vec();
            for (k, &c) in counts.iter().enumerate() {
                cursor[k] += c as usize;
            }
            offset
        })
        .collect();
    // 4. Scatter, chunks in parallel: their target slots are disjoint by construction.
    let mut order = vec![0u32; keys.len()];
    let slots = SharedSlots(order.as_mut_ptr());
    ranked.par_iter().zip(offsets).enumerate().for_each(|(c, ((rows, _), mut next))| {
        let slots = &slots;
        for (i, &r) in rows.iter().enumerate() {
            let slot = &mut next[r as usize];
            // SAFETY: chunk c owns slots [offset_c[k], offset_c[k] + count_c[k]) of every key k,
            // ranges that are disjoint across chunks and inside `order`.
            unsafe { *slots.0.add(*slot) = (c * chunk + i) as u32 };
            *slot += 1;
        }
    });
    (order, starts)
}

/// The output buffer shared by the scatter's chunks, which write disjoint slots.
struct SharedSlots(*mut u32);
// SAFETY: see the scatter in `group_by_key`: every slot is written by exactly one chunk.
#[allow(unsafe_code)]
unsafe impl Sync for SharedSlots {}

/// Sorts one entity's positions (ascending on entry) by the order-by keys, ties by position.
fn sort_run(run: &mut [u32], keys: &[Vec<u64>], scratch: &mut Vec<(u64, u32)>) {
    if run.len() < 2 {
        return;
    }
    match keys.len() {
        0 => {}
        1 | 2 => {
            // By the first key, ties by position. Logs are mostly written in time order, so the
            // run usually is already: checking costs one read of the key per row. Otherwise the
            // merge sort, which finds the sorted stretches between ties (a quarter faster than
            // quicksort on such runs). Keys end with the position, so they are distinct and any
            // correct sort gives the same order.
            let first = &keys[0];
            if !run.windows(2).all(|pair| first[pair[0] as usize] <= first[pair[1] as usize]) {
                scratch.clear();
                scratch.extend(run.iter().map(|&p| (first[p as usize], p)));
                scratch.sort();
                for (slot, &(_, p)) in run.iter_mut().zip(scratch.iter()) {
                    *slot = p;
                }
            }
            // Rows tied on the first key (a few per entity in a log) by the second key, then by
            // position: only they need the second key.
            if let Some(second) = keys.get(1) {
                let mut start = 0;
                while start < run.len() {
                    let key = first[run[start] as usize];
                    let end = start + run[start..].iter().take_while(|&&p| first[p as usize] == key).count();
                    if end - start > 1 {
                        run[start..end].sort_by_key(|&p| (second[p as usize], p));
                    }
                    start = end;
                }
            }
        }
        _ => run.sort_unstable_by(|&x, &y| {
            keys.iter()
                .map(|k| k[x as usize].cmp(&k[y as usize]))
                .find(|o| *o != Ordering::Equal)
                .unwrap_or_else(|| x.cmp(&y))
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BooleanArray, Float64Array, Int32Array, Int64Array, StringArray, UInt64Array};
    use arrow::row::{RowConverter, SortField};

    use super::*;

    /// The order the row format gives: the definition this module must reproduce.
    fn by_row_format(entities: &[ArrayRef], orders: &[ArrayRef], rows: usize) -> Vec<u32> {
        let convert = |columns: &[ArrayRef]| {
            let fields = columns.iter().map(|c| SortField::new(c.data_type().clone())).collect();
            RowConverter::new(fields).unwrap().convert_columns(columns).unwrap()
        };
        let e = convert(entities);
        // Rows of no columns cannot be made; no order-by columns compare equal.
        let o = (!orders.is_empty()).then(|| convert(orders));
        let mut order: Vec<u32> = (0..rows as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            let by_order = o.as_ref().map_or(Ordering::Equal, |o| o.row(a).cmp(&o.row(b)));
            e.row(a).cmp(&e.row(b)).then(by_order).then(a.cmp(&b))
        });
        order
    }

    #[test]
    fn key_columns_preserve_each_types_order() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![i64::MIN, -1, 0, 1, i64::MAX, -5])),
            Arc::new(Int32Array::from(vec![3, -3, 0, i32::MIN, i32::MAX, 0])),
            Arc::new(UInt64Array::from(vec![u64::MAX, 0, 7, 1 << 63, 5, 7])),
            Arc::new(Float64Array::from(vec![-0.0, 0.0, f64::NAN, f64::NEG_INFINITY, -1.5, 2.5])),
            Arc::new(BooleanArray::from(vec![true, false, true, false, false, true])),
            Arc::new(StringArray::from(vec!["b", "", "ab", "b", "a\u{e9}", "B"])),
        ];
        for column in &columns {
            let keys = key_column(column).unwrap();
            let rows = by_row_format(std::slice::from_ref(column), &[], column.len());
            for pair in rows.windows(2) {
                let (a, b) = (pair[0] as usize, pair[1] as usize);
                assert!(keys[a] <= keys[b], "{:?}: rows {a} and {b}", column.data_type());
            }
            let distinct = |v: &[u64]| v.iter().collect::<std::collections::BTreeSet<_>>().len();
            let converter = RowConverter::new(vec![SortField::new(column.data_type().clone())]).unwrap();
            let encoded = converter.convert_columns(std::slice::from_ref(column)).unwrap();
            let distinct_rows =
                (0..column.len()).map(|i| encoded.row(i).owned()).collect::<std::collections::BTreeSet<_>>();
            assert_eq!(distinct(&keys), distinct_rows.len(), "{:?}: equal keys iff equal values", column.data_type());
        }
    }

    #[test]
    fn matches_the_row_format_order_on_generated_keys() {
        let mut seed = 7u64;
        let mut next = |below: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % below
        };
        // 300,000 rows span several chunks of the parallel counting sort.
        for (rows, order_columns, entity_columns) in
            [(1, 1, 1), (500, 1, 1), (2000, 2, 1), (1500, 3, 2), (800, 0, 2), (300_000, 1, 1)]
        {
            let entities: Vec<ArrayRef> = (0..entity_columns)
                .map(|c| -> ArrayRef {
                    if c == 0 {
                        Arc::new(Int64Array::from_iter_values((0..rows).map(|_| next(9) as i64 - 4)))
                    } else {
                        Arc::new(StringArray::from_iter_values((0..rows).map(|_| format!("u{}", next(3)))))
                    }
                })
                .collect();
            let orders: Vec<ArrayRef> = (0..order_columns)
                .map(|c| -> ArrayRef {
                    if c == 1 {
                        Arc::new(Float64Array::from_iter_values((0..rows).map(|_| next(5) as f64 - 2.5)))
                    } else {
                        Arc::new(Int32Array::from_iter_values((0..rows).map(|_| next(20) as i32 - 10)))
                    }
                })
                .collect();
            let got = order_rows(&entities, &orders, rows).unwrap();
            assert_eq!(got.order, by_row_format(&entities, &orders, rows), "{rows} rows");
            assert_eq!(*got.entity_starts.last().unwrap(), rows);
        }
        // A log in time order: the first key never goes down in input order (runs need no sort),
        // with ties that the second key, shuffled, must order; and one with a step back.
        for step_back in [None, Some(1234)] {
            let rows = 5_000;
            let entities: Vec<ArrayRef> =
                vec![Arc::new(Int64Array::from_iter_values((0..rows).map(|_| next(3) as i64)))];
            let time = (0..rows as i64).map(|i| if Some(i) == step_back { 0 } else { i / 4 });
            let orders: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from_iter_values(time)),
                Arc::new(Int64Array::from_iter_values((0..rows).map(|_| next(1000) as i64))),
            ];
            let got = order_rows(&entities, &orders, rows).unwrap();
            assert_eq!(got.order, by_row_format(&entities, &orders, rows), "step back at {step_back:?}");
        }
    }
}

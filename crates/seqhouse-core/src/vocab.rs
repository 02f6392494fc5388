//! Vocabularies (`--vocab`): a feature's values replaced by dense `int64` ids, fitted on the
//! events of the first split or subset only, so that validation and test never shape them.
//!
//! | id | means |
//! |----|-------|
//! | 0 | padding |
//! | 1 | null |
//! | 2 | out of vocabulary: unseen when fitted, or seen fewer than `min_count` times |
//! | 3, 4, … | the values, by descending count, ties by ascending value |
//!
//! A vocabulary is stored as a Parquet file of `id` (int64), `value` (the column's type) and
//! `count` (int64: occurrences in the fitting events), one row per value in id order; the
//! reserved ids have no rows.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::{Error, Result};
use crate::order::MulHasher;
use crate::setting::Setting;
use crate::spec::VocabSpec;

/// The id of padding.
pub const PAD_ID: i64 = 0;
/// The id of a null value.
pub const NULL_ID: i64 = 1;
/// The id of a value the vocabulary does not hold.
pub const OOV_ID: i64 = 2;
/// The id of the most frequent value.
pub const FIRST_ID: i64 = 3;
/// The folder, inside an output, that holds its vocabularies. Its leading `_` is what makes
/// dataset readers (Arrow, pandas, Polars, Spark, Hive) skip it when they open the output
/// folder as a table: without it they would read the vocabularies as rows of windows.
pub const VOCAB_FOLDER: &str = "_vocab";
/// The folder earlier versions wrote vocabularies into. Outputs that have one stay seqhouse's
/// (replaced with `--overwrite`, their old files removed) and `--vocab-from` still reads them;
/// their manifests name the file's path, so reading through the manifest needs nothing more.
pub const LEGACY_VOCAB_FOLDER: &str = "vocab";
/// Every folder name a seqhouse output may hold vocabularies in: the current one first.
pub const VOCAB_FOLDERS: [&str; 2] = [VOCAB_FOLDER, LEGACY_VOCAB_FOLDER];

/// The name of feature `feature`'s vocabulary file inside an output, in vocabulary folder
/// `folder` (one of [`VOCAB_FOLDERS`]): `_vocab/NAME.parquet`.
pub fn vocab_file(folder: &str, feature: &str) -> String {
    format!("{folder}/{feature}.parquet")
}

/// Whether a value of this type can be encoded. Floats cannot: equal-looking floats are
/// often not equal, so their ids would depend on rounding upstream.
pub fn is_encodable(data_type: &DataType) -> bool {
    !data_type.is_floating()
}

/// The schema of a vocabulary file for values of `value_type`.
pub fn file_schema(value_type: &DataType) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("value", value_type.clone(), false),
        Field::new("count", DataType::Int64, false),
    ]))
}

/// Values in the row format, whose bytes compare as the values do (ascending).
fn converter(data_type: &DataType) -> Result<RowConverter> {
    RowConverter::new(vec![SortField::new(data_type.clone())]).map_err(Error::internal)
}

fn to_rows(converter: &RowConverter, values: &ArrayRef) -> Result<Rows> {
    converter.convert_columns(std::slice::from_ref(values)).map_err(Error::internal)
}

/// A hash map keyed by integers, with the kernel's multiplicative hash (the default SipHash
/// costs more than the rest of the encoding).
type IntMap<V> = HashMap<i64, V, BuildHasherDefault<MulHasher>>;

/// Whether values of `data_type` are keyed as `i64` (whose order is theirs) rather than in the
/// row format: the integer types up to 32 bits unsigned and 64 bits signed.
fn keyed_as_i64(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(data_type, Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32)
}

fn as_i64(values: &ArrayRef) -> Result<Int64Array> {
    let cast = arrow::compute::cast(values, &DataType::Int64).map_err(Error::internal)?;
    Ok(cast.as_any().downcast_ref::<Int64Array>().expect("cast to int64").clone())
}

/// How often each value of one feature occurs in the events a vocabulary is fitted on.
pub struct ValueCounts {
    data_type: DataType,
    converter: RowConverter,
    counts: HashMap<Box<[u8]>, u64>,
    ints: IntMap<u64>,
}

impl ValueCounts {
    /// No counts yet, for values of `data_type`.
    pub fn new(data_type: &DataType) -> Result<Self> {
        Ok(ValueCounts {
            data_type: data_type.clone(),
            converter: converter(data_type)?,
            counts: HashMap::new(),
            ints: IntMap::default(),
        })
    }

    /// Counts the non-null `values`.
    pub fn add(&mut self, values: &ArrayRef) -> Result<()> {
        if keyed_as_i64(&self.data_type) {
            let ints = as_i64(values)?;
            for value in ints.iter().flatten() {
                *self.ints.entry(value).or_insert(0) += 1;
            }
            return Ok(());
        }
        let rows = to_rows(&self.converter, values)?;
        for (i, row) in rows.iter().enumerate() {
            if values.is_valid(i) {
                match self.counts.get_mut(row.as_ref()) {
                    Some(count) => *count += 1,
                    None => {
                        self.counts.insert(row.as_ref().into(), 1);
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds counts made elsewhere (an engine's grouped count): value `values[i]` occurs
    /// `counts[i]` more times. `values` may be of another type that casts to the counted one
    /// without loss (an engine may read a column back wider); nulls are skipped.
    pub fn add_counted(&mut self, values: &ArrayRef, counts: &[u64]) -> Result<()> {
        if values.len() != counts.len() {
            return Err(Error::internal(format!("{} values but {} counts", values.len(), counts.len())));
        }
        let options = arrow::compute::CastOptions { safe: false, ..Default::default() };
        let values = arrow::compute::cast_with_options(values, &self.data_type, &options).map_err(Error::internal)?;
        if keyed_as_i64(&self.data_type) {
            let ints = as_i64(&values)?;
            for (value, &count) in ints.iter().zip(counts) {
                if let Some(value) = value {
                    *self.ints.entry(value).or_insert(0) += count;
                }
            }
            return Ok(());
        }
        let rows = to_rows(&self.converter, &values)?;
        for (i, row) in rows.iter().enumerate() {
            if values.is_valid(i) {
                *self.counts.entry(row.as_ref().into()).or_insert(0) += counts[i];
            }
        }
        Ok(())
    }

    /// Adds `other`'s counts (of another range of entities).
    pub fn merge(&mut self, other: ValueCounts) {
        for (value, count) in other.counts {
            *self.counts.entry(value).or_insert(0) += count;
        }
        for (value, count) in other.ints {
            *self.ints.entry(value).or_insert(0) += count;
        }
    }

    /// The vocabulary of these counts under `spec`'s `min_count` and `max_size`: values by
    /// descending count, ties by ascending value.
    pub fn fit(self, spec: &VocabSpec) -> Result<Vocabulary> {
        let min_count = spec.min_count.unwrap_or(1);
        let max = spec.max_size.map_or(usize::MAX, |max| usize::try_from(max).unwrap_or(usize::MAX));
        if keyed_as_i64(&self.data_type) {
            let mut ranked: Vec<(i64, u64)> = self.ints.into_iter().filter(|(_, c)| *c >= min_count).collect();
            ranked.sort_unstable_by(|(a, ca), (b, cb)| cb.cmp(ca).then_with(|| a.cmp(b)));
            ranked.truncate(max);
            let values: ArrayRef = Arc::new(Int64Array::from_iter_values(ranked.iter().map(|(v, _)| *v)));
            let values = arrow::compute::cast(&values, &self.data_type).map_err(Error::internal)?;
            let counts = ranked.iter().map(|(_, c)| *c).collect();
            return Vocabulary::new(spec.name.clone(), values, counts, None);
        }
        let mut ranked: Vec<(Box<[u8]>, u64)> = self.counts.into_iter().filter(|(_, c)| *c >= min_count).collect();
        ranked.sort_unstable_by(|(a, ca), (b, cb)| cb.cmp(ca).then_with(|| a.cmp(b)));
        ranked.truncate(max);
        let parser = self.converter.parser();
        let rows = ranked.iter().map(|(bytes, _)| parser.parse(bytes));
        let mut values = self.converter.convert_rows(rows).map_err(Error::internal)?;
        let values = values.pop().expect("one column");
        let counts = ranked.iter().map(|(_, c)| *c).collect();
        Vocabulary::new(spec.name.clone(), values, counts, None)
    }

    /// The type of the values counted.
    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }
}

/// One feature's vocabulary: its values in id order, from [`FIRST_ID`].
#[derive(Debug)]
pub struct Vocabulary {
    /// The feature it encodes.
    pub feature: String,
    /// The values, value `i` having id `ids[i]`.
    values: ArrayRef,
    ids: Vec<i64>,
    counts: Vec<u64>,
    /// Where it was fitted (the split or subset), when known.
    pub fitted_on: Option<String>,
    converter: RowConverter,
    lookup: HashMap<Box<[u8]>, i64>,
    /// The lookup, for values keyed as integers.
    int_lookup: IntMap<i64>,
}

impl Vocabulary {
    fn new(feature: String, values: ArrayRef, counts: Vec<u64>, ids: Option<Vec<i64>>) -> Result<Self> {
        let converter = converter(values.data_type())?;
        let ids = ids.unwrap_or_else(|| (FIRST_ID..).take(values.len()).collect());
        let (mut lookup, mut int_lookup) = (HashMap::new(), IntMap::default());
        if keyed_as_i64(values.data_type()) {
            int_lookup = as_i64(&values)?.values().iter().copied().zip(ids.iter().copied()).collect();
        } else {
            let rows = to_rows(&converter, &values)?;
            lookup = rows.iter().zip(&ids).map(|(row, &id)| (row.as_ref().into(), id)).collect();
        }
        Ok(Vocabulary { feature, values, ids, counts, fitted_on: None, converter, lookup, int_lookup })
    }

    /// How many distinct values the lookup holds (fewer than the values when one repeats).
    fn distinct(&self) -> usize {
        self.lookup.len() + self.int_lookup.len()
    }

    /// How many values have their own id.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value has its own id (every value is out of vocabulary).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The type of the values.
    pub fn value_type(&self) -> &DataType {
        self.values.data_type()
    }

    /// The ids of `values` (of the vocabulary's value type): [`NULL_ID`] for a null,
    /// [`OOV_ID`] for a value it does not hold.
    pub fn encode(&self, values: &ArrayRef) -> Result<ArrayRef> {
        if keyed_as_i64(values.data_type()) {
            let ints = as_i64(values)?;
            let ids = Int64Array::from_iter_values(ints.iter().map(|value| match value {
                None => NULL_ID,
                Some(value) => self.int_lookup.get(&value).copied().unwrap_or(OOV_ID),
            }));
            return Ok(Arc::new(ids));
        }
        let rows = to_rows(&self.converter, values)?;
        let ids: Vec<i64> = (rows.iter().enumerate())
            .map(
                |(i, row)| {
                    if values.is_null(i) { NULL_ID } else { self.lookup.get(row.as_ref()).copied().unwrap_or(OOV_ID) }
                },
            )
            .collect();
        Ok(Arc::new(Int64Array::from(ids)))
    }

    /// The vocabulary as its file's one batch (see the module documentation).
    pub fn to_batch(&self) -> Result<RecordBatch> {
        let counts = Int64Array::from_iter_values(self.counts.iter().map(|&c| c as i64));
        RecordBatch::try_new(
            file_schema(self.value_type()),
            vec![Arc::new(Int64Array::from(self.ids.clone())), self.values.clone(), Arc::new(counts)],
        )
        .map_err(Error::internal)
    }

    /// Reads a vocabulary file's `batch` (from `source`) for feature `feature`, whose column
    /// is `column_type`. Refuses a file of another value type, or one whose ids are not
    /// unique ids from [`FIRST_ID`] with unique non-null values.
    pub fn from_batch(feature: &str, batch: &RecordBatch, column_type: &DataType, source: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::setting(
                Setting::VocabFrom,
                format!("the vocabulary {source} of '{feature}' {why}; fit it again without {}", Setting::VocabFrom),
            )
        };
        let column = |name: &str| batch.column_by_name(name).ok_or_else(|| bad(format!("has no column '{name}'")));
        let (ids, values, counts) = (column("id")?, column("value")?, column("count")?);
        let value_type = crate::resolve::normalize_type(values.data_type());
        if &value_type != column_type {
            return Err(Error::setting(
                Setting::VocabFrom,
                format!(
                    "the vocabulary {source} holds values of type {value_type}, but '{feature}' is {column_type} here; fit a vocabulary on this column instead, or cast the column to {value_type}"
                ),
            ));
        }
        let values = arrow::compute::cast(values, column_type).map_err(Error::internal)?;
        let as_i64 = |array: &ArrayRef, name: &str| -> Result<Vec<i64>> {
            let cast = arrow::compute::cast(array, &DataType::Int64)
                .map_err(|_| bad(format!("has a non-integer '{name}'")))?;
            let cast = cast.as_any().downcast_ref::<Int64Array>().expect("cast to int64");
            if cast.null_count() > 0 {
                return Err(bad(format!("has a null '{name}'")));
            }
            Ok(cast.values().to_vec())
        };
        let ids = as_i64(ids, "id")?;
        let counts = as_i64(counts, "count")?;
        if values.null_count() > 0 {
            return Err(bad("has a null value (nulls have the reserved id 1)".to_string()));
        }
        if let Some(id) = ids.iter().find(|&&id| id < FIRST_ID) {
            return Err(bad(format!("gives a value the id {id}; ids 0 to 2 are reserved")));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(id) = ids.iter().find(|id| !seen.insert(**id)) {
            return Err(bad(format!("gives the id {id} twice")));
        }
        let vocabulary =
            Vocabulary::new(feature.to_string(), values, counts.iter().map(|&c| c as u64).collect(), Some(ids))?;
        if vocabulary.distinct() != vocabulary.len() {
            return Err(bad("lists a value twice".to_string()));
        }
        Ok(vocabulary)
    }
}

/// The vocabulary of `spec` fitted on `values`, for tests and small jobs: one pass of
/// [`ValueCounts`].
pub fn fit(spec: &VocabSpec, values: &ArrayRef) -> Result<Vocabulary> {
    let mut counts = ValueCounts::new(values.data_type())?;
    counts.add(values)?;
    counts.fit(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::StringArray;

    fn spec(min_count: Option<u64>, max_size: Option<u64>) -> VocabSpec {
        VocabSpec { name: "item".to_string(), min_count, max_size }
    }

    #[test]
    fn ids_follow_descending_counts_then_ascending_values() {
        let values: ArrayRef =
            Arc::new(StringArray::from(vec![Some("b"), Some("a"), None, Some("c"), Some("b"), Some("a"), Some("d")]));
        let vocab = fit(&spec(None, None), &values).unwrap();
        let batch = vocab.to_batch().unwrap();
        let ids = batch.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let names = batch.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let got: Vec<(i64, &str)> = ids.values().iter().copied().zip(names.iter().map(Option::unwrap)).collect();
        // a and b tie at 2 (a first); c and d tie at 1.
        assert_eq!(got, vec![(3, "a"), (4, "b"), (5, "c"), (6, "d")]);
        let probe: ArrayRef = Arc::new(StringArray::from(vec![Some("d"), None, Some("zzz"), Some("a")]));
        let encoded = vocab.encode(&probe).unwrap();
        let encoded = encoded.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(encoded.values().to_vec(), vec![6, NULL_ID, OOV_ID, 3]);
    }

    #[test]
    fn min_count_and_max_size_send_values_out_of_vocabulary() {
        let values: ArrayRef = Arc::new(Int64Array::from(vec![5, 5, 5, 7, 7, 9, 1, 1]));
        let vocab = fit(&spec(Some(2), Some(2)), &values).unwrap();
        let encoded = vocab.encode(&values).unwrap();
        let encoded = encoded.as_any().downcast_ref::<Int64Array>().unwrap();
        // 5 (3 times) then 1 and 7 tie at 2: 1 wins by value, 7 is cut by max_size, 9 by min_count.
        assert_eq!(encoded.values().to_vec(), vec![3, 3, 3, OOV_ID, OOV_ID, OOV_ID, 4, 4]);
    }

    #[test]
    fn counts_made_elsewhere_fit_as_counted_values_do() {
        let values: ArrayRef = Arc::new(StringArray::from(vec!["b", "a", "c", "b", "a", "b"]));
        let counted = fit(&spec(None, Some(2)), &values).unwrap().to_batch().unwrap();
        let mut counts = ValueCounts::new(&DataType::Utf8).unwrap();
        // An engine's grouped count, in its own order, a value split over two rows, and a null.
        let grouped: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), Some("c"), None, Some("b"), Some("b")]));
        counts.add_counted(&grouped, &[2, 1, 9, 1, 2]).unwrap();
        assert_eq!(counts.fit(&spec(None, Some(2))).unwrap().to_batch().unwrap(), counted);
        // Read back wider (int64 for an int32 column), as an engine may write it.
        let mut ints = ValueCounts::new(&DataType::Int32).unwrap();
        ints.add_counted(&(Arc::new(Int64Array::from(vec![7, 3])) as ArrayRef), &[1, 4]).unwrap();
        let batch = ints.fit(&spec(None, None)).unwrap().to_batch().unwrap();
        assert_eq!(batch.column(1).data_type(), &DataType::Int32);
        assert_eq!(batch.column(2).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec(), vec![4, 1]);
    }

    #[test]
    fn a_file_round_trips_and_a_mismatched_type_is_refused() {
        let values: ArrayRef = Arc::new(Int64Array::from(vec![4, 4, 8]));
        let vocab = fit(&spec(None, None), &values).unwrap();
        let batch = vocab.to_batch().unwrap();
        let back = Vocabulary::from_batch("item", &batch, &DataType::Int64, "v.parquet").unwrap();
        assert_eq!(back.to_batch().unwrap(), batch);
        let err = Vocabulary::from_batch("item", &batch, &DataType::Utf8, "v.parquet").unwrap_err().to_string();
        assert!(err.contains("int64") || err.contains("Int64"), "{err}");
        assert!(err.contains("'item'"), "{err}");
    }
}

//! Binding a [`SequenceSpec`] to an input schema: column positions, supported types, typed pad and
//! fill values, and the output schema every engine must produce.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::compute::{CastOptions, cast, cast_with_options};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::util::display::FormatOptions;

use crate::error::{Error, Result};
use crate::setting::Setting;
use crate::spec::{FOLD, IS_PAD, SEQUENCE_INDEX, SEQUENCE_LENGTH, SequenceSpec, TARGET_MASK};
use crate::split::{Cutoffs, Split};

/// Whether seqhouse can group, order and pad a column of this type.
///
/// Dictionary and view types are not listed: engines decode them to their value type on read
/// (see [`normalize_type`]).
pub fn is_supported_type(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Float32
            | Float64
            | Utf8
            | LargeUtf8
            | Date32
            | Date64
            | Timestamp(_, _)
    )
}

/// The type a column is sequenced as: dictionaries become their values, views their plain form.
///
/// Readers hand out dictionary- or view-encoded strings depending on how a file was written; the
/// output contract speaks of the logical type, so both are decoded before sequencing.
pub fn normalize_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Dictionary(_, value) => normalize_type(value),
        DataType::Utf8View => DataType::Utf8,
        other => other.clone(),
    }
}

/// Widens two types seen for the same column in different files to one, if that is lossless
/// enough to be unsurprising (integers to the wider integer, integers and floats to Float64).
pub fn unify_types(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    let int_width = |t: &DataType| match t {
        Int8 => Some(1),
        Int16 => Some(2),
        Int32 => Some(3),
        Int64 => Some(4),
        _ => None,
    };
    match (a, b) {
        (Null, other) | (other, Null) => Some(other.clone()),
        (Utf8, LargeUtf8) | (LargeUtf8, Utf8) => Some(LargeUtf8),
        _ if int_width(a).is_some() && int_width(b).is_some() => {
            Some(if int_width(a) > int_width(b) { a.clone() } else { b.clone() })
        }
        (Float32 | Float64 | Int8 | Int16 | Int32 | Int64, Float32 | Float64 | Int8 | Int16 | Int32 | Int64) => {
            Some(Float64)
        }
        _ => None,
    }
}

/// The kind of values a type holds: `integer`, `floating-point`, `string`, or the type itself.
///
/// An entity or order-by column must keep its kind across files: widened to floats, integer
/// ids and times above 2^53 would merge into one entity or lose their order.
pub fn type_kind(data_type: &DataType) -> String {
    use DataType::*;
    match data_type {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => "integer".into(),
        Float16 | Float32 | Float64 => "floating-point".into(),
        Utf8 | LargeUtf8 | Utf8View => "string".into(),
        other => other.to_string(),
    }
}

/// The first value of an integer `column` that a Float64 cannot hold exactly, as text.
fn first_inexact_as_float(column: &dyn Array) -> Option<String> {
    use arrow::datatypes::{Int64Type, UInt64Type};
    // Integers up to 32 bits always fit a double's 53-bit mantissa.
    let exact_i64 = |v: i64| (v as f64) as i128 == v as i128;
    let exact_u64 = |v: u64| (v as f64) as u128 == v as u128;
    match column.data_type() {
        DataType::Int64 => {
            column.as_primitive::<Int64Type>().iter().flatten().find(|&v| !exact_i64(v)).map(|v| v.to_string())
        }
        DataType::UInt64 => {
            column.as_primitive::<UInt64Type>().iter().flatten().find(|&v| !exact_u64(v)).map(|v| v.to_string())
        }
        _ => None,
    }
}

/// A spec bound to an input schema. Built once per job by [`ResolvedSpec::new`].
#[derive(Debug, Clone)]
pub struct ResolvedSpec {
    /// The validated spec.
    pub spec: SequenceSpec,
    /// The projected input schema the kernel expects: [`SequenceSpec::needed_columns`] in order.
    pub input_schema: SchemaRef,
    /// Positions of the entity columns in `input_schema`.
    pub entity_idx: Vec<usize>,
    /// Positions of the order-by columns in `input_schema`.
    pub order_idx: Vec<usize>,
    /// Positions of the feature columns in `input_schema`; for a time delta, of its column.
    pub feature_idx: Vec<usize>,
    /// Per feature, how a time delta derives it from its column (`None`: read as it is).
    pub gaps: Vec<Option<Gap>>,
    /// One-element arrays holding each feature's pad value, typed as the column.
    pub pads: Vec<ArrayRef>,
    /// One-element arrays holding each feature's null replacement, if any.
    pub fills: Vec<Option<ArrayRef>>,
    /// The schema of every output part (of the first split's, when the job is split).
    pub output_schema: SchemaRef,
    /// Per output ([`SequenceSpec::output_names`]), its parts' schema: the first split's has
    /// the `fold` column when folds are asked for.
    pub output_schemas: Vec<SchemaRef>,
    /// `--session-gap` in the first order-by column's units (days for dates).
    pub session_gap: Option<i64>,
    /// For a temporal split, each cutoff as a one-element array of the first order-by
    /// column's type, in increasing order.
    pub cutoffs: Vec<ArrayRef>,
}

impl ResolvedSpec {
    /// Binds `spec` to `schema` (the full schema of an input; `source` names it in errors),
    /// after validating it.
    pub fn new(spec: &SequenceSpec, schema: &Schema, source: &str) -> Result<Self> {
        spec.validate()?;
        Self::bind(spec, schema, source)
    }

    /// The position of feature `name` among the spec's features; `name` must be one (a name
    /// the spec validated, such as a `--vocab` or `--k-core` column).
    pub fn feature_position(&self, name: &str) -> usize {
        self.spec.features.iter().position(|f| f.name == name).expect("a validated feature")
    }

    /// The input type of feature `name` (see [`ResolvedSpec::feature_position`]): its column's.
    pub fn feature_input_type(&self, name: &str) -> &DataType {
        self.input_schema.field(self.feature_idx[self.feature_position(name)]).data_type()
    }

    /// Binds a job's spec, which [`crate::SequenceRequest::jobs`] validated when it made the job.
    pub fn for_job(job: &crate::SequenceJob, schema: &Schema, source: &str) -> Result<Self> {
        Self::bind(&job.spec, schema, source)
    }

    fn bind(spec: &SequenceSpec, schema: &Schema, source: &str) -> Result<Self> {
        let available = || schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
        let mut fields = Vec::new();
        for name in spec.needed_columns() {
            let field = schema.field_with_name(&name).map_err(|_| Error::ColumnNotFound {
                column: name.clone(),
                file: source.to_string(),
                available: available(),
            })?;
            let data_type = normalize_type(field.data_type());
            if !is_supported_type(&data_type) {
                return Err(Error::UnsupportedType {
                    column: name.clone(),
                    message: format!(
                        "type {data_type} is not supported; seqhouse sequences booleans, integers, floats, strings, dates and timestamps (cast it upstream)"
                    ),
                });
            }
            fields.push(Field::new(name, data_type, true));
        }
        let input_schema = Arc::new(Schema::new(fields));
        let position = |name: &String| input_schema.index_of(name).expect("needed column was just added");
        let entity_idx: Vec<usize> = spec.entity.iter().map(position).collect();
        let order_idx: Vec<usize> = spec.order_by.iter().map(position).collect();
        let feature_idx: Vec<usize> = (spec.features.iter())
            .map(|f| position(spec.time_delta(&f.name).map_or(&f.name, |delta| &delta.column)))
            .collect();
        refuse_shadowed_columns(spec, schema.fields().iter().map(|f| f.name().as_str()))?;
        let gaps = (spec.features.iter())
            .map(|f| spec.time_delta(&f.name).map(|delta| Gap::of(delta, schema)).transpose())
            .collect::<Result<Vec<_>>>()?;
        for vocab in &spec.vocab {
            let f = spec.features.iter().position(|f| f.name == vocab.name).expect("validated");
            let data_type = input_schema.field(feature_idx[f]).data_type();
            if !crate::vocab::is_encodable(data_type) {
                return Err(Error::UnsupportedType {
                    column: vocab.name.clone(),
                    message: format!(
                        "is {data_type}, and {} encodes booleans, integers, strings, dates and timestamps, not floats (equal-looking floats often differ); drop {} or cast the column upstream",
                        Setting::Vocab,
                        Setting::Vocab.with(vocab)
                    ),
                });
            }
        }
        // What the kernel writes per feature: gaps and vocabulary ids are int64.
        let feature_types: Vec<DataType> = (spec.features.iter().zip(feature_idx.iter().zip(&gaps)))
            .map(|(feature, (&idx, gap))| match gap {
                Some(_) => Gap::DATA_TYPE,
                None if spec.vocab_of(&feature.name).is_some() => DataType::Int64,
                None => input_schema.field(idx).data_type().clone(),
            })
            .collect();

        let mut pads = Vec::new();
        let mut fills = Vec::new();
        for (feature, data_type) in spec.features.iter().zip(&feature_types) {
            pads.push(match &feature.pad {
                Some(text) => parse_value(Setting::Feature, &feature.name, text, data_type)?,
                None => zero_value(data_type)?,
            });
            let fill = spec.fill_null.iter().find(|f| f.column == feature.name);
            fills.push(match fill {
                Some(fill) => Some(parse_value(Setting::FillNull, &fill.column, &fill.value, data_type)?),
                None => None,
            });
        }

        let first_order = input_schema.field(order_idx[0]);
        let session_gap = (spec.session_gap.as_deref())
            .map(|text| session_gap(text, first_order.name(), first_order.data_type()))
            .transpose()?;
        let n = spec.sequence_length as i32;
        let mut out_fields: Vec<Field> = entity_idx
            .iter()
            .map(|&i| Field::new(input_schema.field(i).name(), input_schema.field(i).data_type().clone(), false))
            .collect();
        if session_gap.is_some() {
            out_fields.push(Field::new(crate::spec::SESSION_INDEX, DataType::Int32, false));
        }
        out_fields.push(Field::new(SEQUENCE_INDEX, DataType::Int64, false));
        out_fields.push(Field::new(SEQUENCE_LENGTH, DataType::Int32, false));
        for (feature, data_type) in spec.features.iter().zip(&feature_types) {
            let item = Field::new_list_field(data_type.clone(), true);
            out_fields.push(Field::new(feature.output_name(), DataType::FixedSizeList(Arc::new(item), n), false));
        }
        let mask_item = Arc::new(Field::new_list_field(DataType::Int8, false));
        out_fields.push(Field::new(IS_PAD, DataType::FixedSizeList(mask_item.clone(), n), false));
        if spec.target_mask {
            out_fields.push(Field::new(TARGET_MASK, DataType::FixedSizeList(mask_item, n), false));
        }
        let output_schema = Arc::new(Schema::new(out_fields.clone()));
        let mut output_schemas = vec![output_schema.clone(); spec.output_names().len()];
        if spec.split.as_ref().and_then(Split::folds).is_some() {
            out_fields.push(Field::new(FOLD, DataType::Int32, false));
            output_schemas[0] = Arc::new(Schema::new(out_fields));
        }
        let cutoffs = match &spec.split {
            Some(Split::Temporal { cutoffs }) => {
                typed_cutoffs(cutoffs, &spec.order_by[0], input_schema.field(order_idx[0]).data_type())?
            }
            Some(Split::Entity { .. }) => {
                check_hashable(spec, &input_schema, &entity_idx)?;
                Vec::new()
            }
            _ => Vec::new(),
        };

        Ok(ResolvedSpec {
            spec: spec.clone(),
            input_schema,
            entity_idx,
            order_idx,
            feature_idx,
            gaps,
            pads,
            fills,
            output_schema: output_schemas[0].clone(),
            output_schemas,
            session_gap,
            cutoffs,
        })
    }

    /// Projects a decoded batch onto [`ResolvedSpec::input_schema`] (by column name) and casts
    /// columns whose type differs (dictionaries, narrower integers). `source` names it in errors.
    pub fn conform(&self, batch: &RecordBatch, source: &str) -> Result<RecordBatch> {
        conform_to(&self.input_schema, batch, source)
    }
    /// Names of the key columns (entity then order-by) with their positions, for null checks.
    pub fn key_columns(&self) -> impl Iterator<Item = (&str, usize)> {
        self.spec
            .entity
            .iter()
            .zip(&self.entity_idx)
            .chain(self.spec.order_by.iter().zip(&self.order_idx))
            .map(|(name, &idx)| (name.as_str(), idx))
    }
}

/// How a time delta turns its column into gaps: the column's values as integers in `scale`
/// units, each gap divided by `divisor` (or multiplied by `multiplier`) into the unit asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// What the column holds.
    pub kind: GapKind,
    /// Gaps in the column's own units are divided by this (a coarser unit), truncating toward
    /// zero as integer division does.
    pub divisor: i64,
    /// ... or multiplied by this (a finer unit).
    pub multiplier: i64,
}

/// The kind of column a [`Gap`] is taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapKind {
    /// Integers: gaps in their own units.
    Integer,
    /// Dates: gaps in days.
    Date,
    /// Timestamps of this unit: gaps in the unit asked for.
    Timestamp(arrow::datatypes::TimeUnit),
}

impl Gap {
    /// The type of every gap.
    pub const DATA_TYPE: DataType = DataType::Int64;

    /// How `delta` derives its gaps from its column in `schema` (the input's full schema).
    fn of(delta: &crate::spec::TimeDelta, schema: &Schema) -> Result<Gap> {
        use arrow::datatypes::TimeUnit;
        let refuse = |message: String| Error::setting(Setting::TimeDelta, message);
        let data_type = schema.field_with_name(&delta.column).map(|f| normalize_type(f.data_type()));
        let data_type = data_type.unwrap_or(DataType::Null);
        let whole = Gap { kind: GapKind::Integer, divisor: 1, multiplier: 1 };
        let no_unit = |kind: GapKind, what: &str| match delta.unit {
            None => Ok(Gap { kind, ..whole }),
            Some(unit) => Err(refuse(format!(
                "'{}' asks for {unit}, but '{}' is {data_type}, whose gaps are in {what}; drop ':{unit}'",
                delta.name, delta.column
            ))),
        };
        match &data_type {
            // A missing column is named by the binding that follows, with the columns there are.
            DataType::Null => Ok(whole),
            t if type_kind(t) == "integer" => no_unit(GapKind::Integer, "its own units"),
            DataType::Date32 | DataType::Date64 => no_unit(GapKind::Date, "days"),
            DataType::Timestamp(unit, _) => {
                let own = match unit {
                    TimeUnit::Second => 1_000_000_000,
                    TimeUnit::Millisecond => 1_000_000,
                    TimeUnit::Microsecond => 1_000,
                    TimeUnit::Nanosecond => 1,
                };
                let asked = delta.unit.unwrap_or(crate::spec::GapUnit::Seconds).nanos();
                let kind = GapKind::Timestamp(*unit);
                Ok(if asked >= own {
                    Gap { kind, divisor: asked / own, multiplier: 1 }
                } else {
                    Gap { kind, divisor: 1, multiplier: own / asked }
                })
            }
            other => Err(refuse(format!(
                "'{}' is taken over '{}', which is {other}; a gap needs an integer, date or timestamp column",
                delta.name, delta.column
            ))),
        }
    }
}

/// `--session-gap` text in the units of the first order-by column `column` (of `data_type`):
/// a plain whole number is in the column's own units (days for dates); a number with a unit
/// (`ns`, `us`, `ms`, `s`, `m`, `h`, `d`) needs a timestamp column (or `d`, a date column) and
/// must come to a whole number of the column's units.
fn session_gap(text: &str, column: &str, data_type: &DataType) -> Result<i64> {
    use arrow::datatypes::TimeUnit;
    let refuse = |why: String| Error::setting(Setting::SessionGap, format!("'{text}' {why}"));
    let timed = matches!(data_type, DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64);
    if !timed && type_kind(data_type) != "integer" {
        return Err(refuse(format!(
            "cuts sessions on '{column}', which is {data_type}; sessions need an integer, date or timestamp first order-by column"
        )));
    }
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: i64 = number.parse().map_err(|_| {
        refuse("is not a duration; give a whole number and a unit (ms, s, m, h, d), e.g. 30m, or a plain number in the first order-by column's units".into())
    })?;
    let nanos: i64 = match unit.trim() {
        "" => return Ok(number),
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        other => return Err(refuse(format!("has the unknown unit '{other}'; use ns, us, ms, s, m, h or d"))),
    };
    let per_unit: i64 = match data_type {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1,
        DataType::Date32 | DataType::Date64 => 86_400_000_000_000,
        t if type_kind(t) == "integer" => {
            return Err(refuse(format!(
                "has a unit, but '{column}' is {t}, whose units seqhouse cannot know; give a plain number in its units"
            )));
        }
        _ => unreachable!("checked above"),
    };
    let total = number.checked_mul(nanos).ok_or_else(|| refuse("is too long".into()))?;
    if total % per_unit != 0 {
        return Err(refuse(format!("is not a whole number of the units of '{column}' ({data_type})")));
    }
    Ok(total / per_unit)
}

/// Refuses a time delta named like one of the input's columns (`columns`, all of them, not
/// only the needed ones): `--feature NAME` would then mean two things.
pub fn refuse_shadowed_columns<'a>(spec: &SequenceSpec, columns: impl IntoIterator<Item = &'a str>) -> Result<()> {
    for column in columns {
        if let Some(delta) = spec.time_delta(column) {
            return Err(Error::setting(
                Setting::TimeDelta,
                format!(
                    "'{}' is also an input column; give the gap another name, or sequence the column as a {}",
                    delta.name,
                    Setting::Feature
                ),
            ));
        }
    }
    Ok(())
}

/// The cutoffs of a temporal split parsed as the first order-by column's type, refused unless
/// each is later than the one before (so the splits' time ranges follow in the order named).
fn typed_cutoffs(cutoffs: &Cutoffs, column: &str, data_type: &DataType) -> Result<Vec<ArrayRef>> {
    let mut typed: Vec<ArrayRef> = Vec::new();
    for (name, text) in cutoffs.parts() {
        let value = parse_value(Setting::SplitAt, column, text, data_type)?;
        if value.is_null(0)
            || matches!(data_type, DataType::Float32 | DataType::Float64) && text.trim().eq_ignore_ascii_case("nan")
        {
            return Err(Error::setting(
                Setting::SplitAt,
                format!("cutoff '{text}' of split '{name}' is not a value of column '{column}' ({data_type})"),
            ));
        }
        if let Some(previous) = typed.last()
            && !arrow::compute::kernels::cmp::lt(previous, &value).map_err(Error::internal)?.value(0)
        {
            let (before, _) = &cutoffs.parts()[typed.len() - 1];
            return Err(Error::setting(
                Setting::SplitAt,
                format!(
                    "cutoff '{text}' of split '{name}' is not later than the cutoff of split '{before}'; give the cutoffs in increasing order"
                ),
            ));
        }
        typed.push(value);
    }
    Ok(typed)
}

/// Refuses an entity split over entity columns the entity hash does not define (it hashes
/// integers and strings, which every engine prints the same way).
fn check_hashable(spec: &SequenceSpec, input_schema: &Schema, entity_idx: &[usize]) -> Result<()> {
    for (name, &idx) in spec.entity.iter().zip(entity_idx) {
        let data_type = input_schema.field(idx).data_type();
        if !matches!(type_kind(data_type).as_str(), "integer" | "string") {
            return Err(Error::setting(
                Setting::Split,
                format!(
                    "hashes integer and string entity columns, and '{name}' is {data_type}; cast it to an integer or a string upstream"
                ),
            ));
        }
    }
    Ok(())
}

/// Projects a decoded batch onto `schema` (some or all of a job's input columns, by name) and
/// casts columns whose type differs. `source` names the batch's file in errors.
pub fn conform_to(schema: &SchemaRef, batch: &RecordBatch, source: &str) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column = batch.column_by_name(field.name()).ok_or_else(|| Error::ColumnNotFound {
                column: field.name().clone(),
                file: source.to_string(),
                available: batch.schema().fields().iter().map(|f| f.name().clone()).collect(),
            })?;
            if column.data_type() == field.data_type() {
                return Ok(column.clone());
            }
            // Files disagreed and the column was widened to floats (`unify_types`): refuse
            // rather than round a value (a feature id near 1e18) into another.
            if *field.data_type() == DataType::Float64
                && let Some(value) = first_inexact_as_float(column.as_ref())
            {
                return Err(Error::UnsupportedType {
                    column: field.name().clone(),
                    message: format!(
                        "it is {} in {source} but floating-point in other input files, and its value {value} there has no exact Float64; give the column one type in every file",
                        column.data_type()
                    ),
                });
            }
            cast(column, field.data_type()).map_err(|e| {
                let message = format!("column '{}' cannot be read as {}: {e}", field.name(), field.data_type());
                Error::CorruptInput { file: source.to_string(), message, source: Some(Box::new(e)) }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(Error::internal)
}

/// Parses user text as a one-element array of `data_type`.
///
/// Dates and timestamps accept ISO text (`2024-01-31`, `2024-01-31T12:00:00`) or a raw integer in
/// the column's unit (days, or the timestamp's unit since the epoch), because pipelines often use
/// `-1` as a timestamp pad.
pub fn parse_value(setting: Setting, column: &str, text: &str, data_type: &DataType) -> Result<ArrayRef> {
    let bad = |reason: String| Error::BadValue {
        setting,
        column: column.to_string(),
        value: text.to_string(),
        data_type: data_type.to_string(),
        reason,
    };
    let strict = CastOptions { safe: false, format_options: FormatOptions::default() };
    let as_text: ArrayRef = Arc::new(StringArray::from(vec![text.trim()]));
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 => {
            // Strings are taken verbatim: padding with " " is legitimate.
            let verbatim: ArrayRef = Arc::new(StringArray::from(vec![text]));
            cast(&verbatim, data_type).map_err(|e| bad(e.to_string()))
        }
        DataType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Arc::new(BooleanArray::from(vec![true]))),
            "false" | "0" => Ok(Arc::new(BooleanArray::from(vec![false]))),
            _ => Err(bad("expected true, false, 1 or 0".into())),
        },
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => {
            if let Ok(raw) = text.trim().parse::<i64>() {
                let raw: ArrayRef = Arc::new(arrow::array::Int64Array::from(vec![raw]));
                let via = if *data_type == DataType::Date32 { DataType::Int32 } else { DataType::Int64 };
                let narrowed = cast_with_options(&raw, &via, &strict).map_err(|e| bad(e.to_string()))?;
                return cast_with_options(&narrowed, data_type, &strict).map_err(|e| bad(e.to_string()));
            }
            cast_with_options(&as_text, data_type, &strict).map_err(|e| bad(e.to_string()))
        }
        _ => {
            let parsed = cast_with_options(&as_text, data_type, &strict).map_err(|e| bad(e.to_string()))?;
            if parsed.is_null(0) {
                return Err(bad("not a number".into()));
            }
            Ok(parsed)
        }
    }
}

/// The default pad of a type: 0, 0.0, false, "", or the epoch for dates and timestamps.
pub fn zero_value(data_type: &DataType) -> Result<ArrayRef> {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 => parse_value(Setting::Feature, "", "", data_type),
        DataType::Boolean => Ok(Arc::new(BooleanArray::from(vec![false]))),
        _ => {
            let zero = parse_value(Setting::Feature, "", "0", data_type)?;
            debug_assert!(!zero.is_null(0));
            Ok(zero)
        }
    }
}

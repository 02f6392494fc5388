//! The only door to the parquet crate's `experimental` API, which carries no semver promise:
//! the RLE and DELTA_BINARY_PACKED encoders and the page codecs that `list_chunk` writes its
//! column chunks with.
//!
//! The workspace pins parquet to one exact version, so nothing moves under this module by a
//! `cargo update`. The tests below hold the encoders to the bytes the Parquet format specifies
//! (worked out by hand from the spec, not recorded from the crate) and the codecs to a round
//! trip, so a parquet release that changes their behaviour fails here, by name, before any
//! output changes. `list_chunk`'s own tests then compare whole chunks with `ArrowWriter`'s.

pub(crate) use parquet::compression::{Codec, CodecOptionsBuilder, create_codec};
pub(crate) use parquet::encodings::encoding::{DeltaBinaryPackedEncoderOptions, DeltaBitPackEncoder, Encoder};
pub(crate) use parquet::encodings::rle::RleEncoder;

#[cfg(test)]
mod tests {
    use parquet::basic::Compression;
    use parquet::data_type::Int64Type;

    use super::*;

    const CHANGED: &str = "parquet's experimental encoders changed behaviour: check list_chunk against ArrowWriter before moving the exact version pin in Cargo.toml";

    /// RLE/bit-packing hybrid (Parquet's Encodings.md): a run of 16 ones at bit width 1 is one
    /// RLE run, header `16 << 1`, then the value in one byte; eight alternating bits are one
    /// bit-packed group, header `(1 << 1) | 1`, then the bits LSB first.
    #[test]
    fn rle_encoder_writes_the_specified_bytes() {
        let mut run = RleEncoder::new(1, 64);
        for _ in 0..16 {
            run.put(1);
        }
        assert_eq!(run.consume(), [16 << 1, 0x01], "{CHANGED}");
        let mut packed = RleEncoder::new(1, 64);
        for bit in [0, 1, 0, 1, 0, 1, 0, 1] {
            packed.put(bit);
        }
        assert_eq!(packed.consume(), [(1 << 1) | 1, 0b1010_1010], "{CHANGED}");
    }

    /// DELTA_BINARY_PACKED: header `<block size> <miniblocks per block> <count> <first value>`
    /// (ULEB128, the first value zig-zag), then per block `<min delta>` (zig-zag) and one bit
    /// width per miniblock. 1..=5 has deltas all 1: min delta 1 (zig-zag 2), widths 0, no bits.
    #[test]
    fn delta_encoder_writes_the_specified_bytes() {
        let options = DeltaBinaryPackedEncoderOptions::try_new(128, 4).unwrap();
        let mut encoder = DeltaBitPackEncoder::<Int64Type>::new_with_options(options);
        encoder.put(&[1, 2, 3, 4, 5]).unwrap();
        let bytes = encoder.flush_buffer().unwrap();
        assert_eq!(&bytes[..], [0x80, 0x01, 4, 5, 2, 2, 0, 0, 0, 0], "{CHANGED}");
    }

    #[test]
    fn codecs_round_trip() {
        let input: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for compression in [Compression::ZSTD(Default::default()), Compression::SNAPPY, Compression::LZ4_RAW] {
            let mut codec = create_codec(compression, &CodecOptionsBuilder::default().build()).unwrap().unwrap();
            let mut compressed = Vec::new();
            codec.compress(&input, &mut compressed).unwrap();
            let mut output = Vec::new();
            codec.decompress(&compressed, &mut output, Some(input.len())).unwrap();
            assert_eq!(output, input, "{compression:?}: {CHANGED}");
        }
    }
}

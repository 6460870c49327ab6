//! A guard run before decoding MessagePack from a checkpoint. Decoders trust the element
//! counts in the bytes: burn's tensor shapes (a `SmallVec`) reserve room for the declared
//! count up front, so 12 hostile bytes can ask for 32 GiB and abort the process (found by
//! fuzzing). Every array, map, string, binary and extension length is checked against the
//! bytes that remain, since each element takes at least one byte.

/// Checks that no length declared in `bytes` exceeds the bytes left; the error gives the offset.
pub fn check_lengths(bytes: &[u8]) -> Result<(), String> {
    let mut pos = 0usize;
    // Values still to read: one top-level value.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let marker = *bytes.get(pos).ok_or_else(|| format!("MessagePack ends early at byte {pos}"))?;
        pos += 1;
        let read_len = |pos: &mut usize, width: usize| -> Result<u64, String> {
            let field = bytes.get(*pos..*pos + width).ok_or_else(|| format!("MessagePack ends early at byte {pos}"))?;
            *pos += width;
            Ok(field.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
        };
        // (skip this many payload bytes, then expect this many more values)
        let (skip, values) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (0, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (u64::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (read_len(&mut pos, 1)?, 0),
            0xc5 | 0xda => (read_len(&mut pos, 2)?, 0),
            0xc6 | 0xdb => (read_len(&mut pos, 4)?, 0),
            0xc7 => (read_len(&mut pos, 1)? + 1, 0),
            0xc8 => (read_len(&mut pos, 2)? + 1, 0),
            0xc9 => (read_len(&mut pos, 4)? + 1, 0),
            0xca => (4, 0),
            0xcb => (8, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xce | 0xd2 => (4, 0),
            0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, read_len(&mut pos, 2)?),
            0xdd => (0, read_len(&mut pos, 4)?),
            0xde => (0, 2 * read_len(&mut pos, 2)?),
            0xdf => (0, 2 * read_len(&mut pos, 4)?),
            0xc1 => return Err(format!("invalid MessagePack marker 0xc1 at byte {}", pos - 1)),
        };
        let left = (bytes.len() - pos) as u64;
        if skip > left || pending + values > left {
            return Err(format!(
                "MessagePack at byte {} declares {} items, only {left} bytes follow",
                pos,
                skip.max(values)
            ));
        }
        pos += skip as usize;
        pending += values;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_lengths;

    #[test]
    fn accepts_real_messagepack_and_refuses_lengths_beyond_the_input() {
        let real =
            rmp_serde::to_vec(&(vec![1u32, 2, 3], "text", std::collections::BTreeMap::from([(1u8, 2.5f64)]))).unwrap();
        assert_eq!(check_lengths(&real), Ok(()));
        // array32 declaring 2^31 elements in 5 bytes.
        assert!(check_lengths(&[0xdd, 0x80, 0, 0, 0]).unwrap_err().contains("declares 2147483648 items"));
        assert!(check_lengths(&[0xc6, 0, 0, 1, 0]).is_err(), "bin32 of 256 bytes with none");
        assert!(check_lengths(&[0x92, 0x01]).is_err(), "an array cut short");
    }
}

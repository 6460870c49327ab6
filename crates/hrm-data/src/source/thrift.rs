//! A guard run before the parquet crate parses a file's footer. The footer is Thrift
//! (compact protocol), and the parser trusts every list length it reads: a few hostile bytes
//! made it reserve 10 GB (found by fuzzing). This walks the encoding once and checks that
//! every list, set, map and binary length fits in the bytes that remain.

/// Checks the Thrift compact-protocol struct in `bytes`; the error gives the offset at fault.
pub(crate) fn check_struct_lengths(bytes: &[u8]) -> Result<(), String> {
    let mut reader = Reader { bytes, pos: 0 };
    reader.skip_value(STRUCT, 0)
}

const STRUCT: u8 = 12;
/// Deeper nesting than any parquet footer has is refused (and bounds the recursion).
const MAX_DEPTH: usize = 64;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.bytes.get(self.pos).ok_or_else(|| format!("footer ends early at byte {}", self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("footer varint too long at byte {}", self.pos))
    }

    /// Fails unless `count` items of at least one byte each fit in what remains.
    fn fits(&self, count: u64) -> Result<(), String> {
        let left = (self.bytes.len() - self.pos) as u64;
        if count > left {
            return Err(format!("footer at byte {} declares {count} items, only {left} bytes follow", self.pos));
        }
        Ok(())
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        self.fits(n)?;
        self.pos += n as usize;
        Ok(())
    }

    /// Skips one value of compact type `kind`.
    fn skip_value(&mut self, kind: u8, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("footer nests deeper than {MAX_DEPTH} at byte {}", self.pos));
        }
        match kind {
            1 | 2 => Ok(()),
            3 => self.skip(1),
            4..=6 => self.varint().map(|_| ()),
            7 => self.skip(8),
            8 => {
                let len = self.varint()?;
                self.skip(len)
            }
            9 | 10 => {
                let header = self.byte()?;
                let count = match header >> 4 {
                    15 => self.varint()?,
                    short => u64::from(short),
                };
                self.fits(count)?;
                let element = header & 0x0f;
                for _ in 0..count {
                    // Booleans inside lists take a byte each.
                    if element == 1 || element == 2 { self.skip(1)? } else { self.skip_value(element, depth + 1)? }
                }
                Ok(())
            }
            11 => {
                let count = self.varint()?;
                self.fits(count.saturating_mul(2))?;
                if count == 0 {
                    return Ok(());
                }
                let types = self.byte()?;
                for _ in 0..count {
                    self.skip_value(types >> 4, depth + 1)?;
                    self.skip_value(types & 0x0f, depth + 1)?;
                }
                Ok(())
            }
            12 => loop {
                let header = self.byte()?;
                if header == 0 {
                    return Ok(());
                }
                if header >> 4 == 0 {
                    self.varint()?; // a long-form field id
                }
                self.skip_value(header & 0x0f, depth + 1)?;
            },
            other => Err(format!("unknown footer type {other} at byte {}", self.pos)),
        }
    }
}

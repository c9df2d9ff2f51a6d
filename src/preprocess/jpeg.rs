//! Is a JPEG file complete? The `image` crate's JPEG decoder (zune-jpeg) fills whatever is
//! missing at the end of a truncated file with grey and reports success, so a file cut at 50% or
//! 90% gave a confident, different top-1 while truncated PNG, GIF and WebP files are refused.
//! This walks the file's marker structure (segments by their lengths, entropy-coded data up to the
//! next marker) and requires the end-of-image marker, without decoding anything: a linear scan.

/// `Ok` when the segments of `bytes` run in order to an end-of-image marker (data after it is
/// allowed, as cameras append some); otherwise what is wrong. Files that do not start like a JPEG
/// are left to the decoder to refuse.
pub fn check_complete(bytes: &[u8]) -> Result<(), String> {
    const TRUNCATED: &str = "truncated JPEG: the file ends before its end-of-image marker (an incomplete download or copy?)";
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Ok(());
    }
    let len = bytes.len();
    let mut i = 2;
    loop {
        // Between segments: skip anything up to a marker, then its 0xFF fill bytes.
        while i < len && bytes[i] != 0xFF {
            i += 1;
        }
        while i < len && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return Err(TRUNCATED.into());
        };
        i += 1;
        match marker {
            0xD9 => return Ok(()),
            // Standalone markers: restart markers, TEM, and a stray SOI.
            0xD0..=0xD8 | 0x01 => {}
            _ => {
                let Some(seg) = bytes.get(i..i + 2) else {
                    return Err(TRUNCATED.into());
                };
                let seg_len = u16::from_be_bytes([seg[0], seg[1]]) as usize;
                if seg_len < 2 {
                    return Err(format!(
                        "corrupt JPEG: a segment at byte {} claims length {seg_len}",
                        i - 2
                    ));
                }
                i += seg_len;
                if i > len {
                    return Err(TRUNCATED.into());
                }
                if marker == 0xDA {
                    // Start of scan: entropy-coded data until a marker that is neither a
                    // stuffed 0xFF00 nor a restart marker.
                    loop {
                        while i < len && bytes[i] != 0xFF {
                            i += 1;
                        }
                        match bytes.get(i + 1) {
                            None => return Err(TRUNCATED.into()),
                            Some(0x00) | Some(0xD0..=0xD7) => i += 2,
                            Some(0xFF) => i += 1,
                            Some(_) => break,
                        }
                    }
                }
            }
        }
    }
}

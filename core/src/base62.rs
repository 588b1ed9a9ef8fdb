//! Base62 with the alphabet `0-9A-Za-z`, in that order (SPEC §3).

pub const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `b` is one of the 62 alphabet bytes.
#[inline]
pub fn is_digit(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// Writes `value` as exactly `N` base62 digits, most significant first,
/// zero-padded. `value` must fit (62^6 > u32::MAX, so 6 digits hold a CRC32).
pub fn encode_fixed<const N: usize>(mut value: u64) -> [u8; N] {
    let mut out = [b'0'; N];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    debug_assert_eq!(value, 0, "value does not fit in {N} base62 digits");
    out
}

/// Fills `out` with uniformly random base62 digits drawn from the OS CSPRNG.
///
/// Rejection sampling keeps every digit uniform: bytes >= 248 (= 4 * 62) are
/// discarded so that `b % 62` carries no bias.
pub fn fill_random(out: &mut [u8]) -> Result<(), getrandom::Error> {
    let mut filled = 0;
    let mut pool = [0u8; 64];
    while filled < out.len() {
        getrandom::getrandom(&mut pool)?;
        for &b in pool.iter() {
            if b < 248 {
                out[filled] = ALPHABET[(b % 62) as usize];
                filled += 1;
                if filled == out.len() {
                    break;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_most_significant_digit_first_zero_padded() {
        assert_eq!(&encode_fixed::<6>(0), b"000000");
        assert_eq!(&encode_fixed::<6>(61), b"00000z");
        assert_eq!(&encode_fixed::<6>(62), b"000010");
        assert_eq!(&encode_fixed::<6>(u32::MAX as u64), b"4gfFC3");
    }

    #[test]
    fn random_digits_are_all_in_the_alphabet() {
        let mut buf = [0u8; 4096];
        fill_random(&mut buf).unwrap();
        assert!(buf.iter().all(|&b| is_digit(b)));
        // every digit of the alphabet shows up in 4096 draws (p(miss) ~ 62 * e^-66)
        for d in ALPHABET {
            assert!(buf.contains(d), "digit {} never drawn", *d as char);
        }
    }
}

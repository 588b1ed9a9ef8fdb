//! Key ids: UUIDv7, time-ordered (SPEC §5).

/// A new UUIDv7. Within one process ids are strictly increasing (the uuid
/// crate keeps a counter for ids minted in the same millisecond).
pub fn new_key_id() -> [u8; 16] {
    *uuid::Uuid::now_v7().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_increase() {
        let mut prev = new_key_id();
        assert_eq!(prev[6] >> 4, 7);
        for _ in 0..1000 {
            let next = new_key_id();
            assert_eq!(next[6] >> 4, 7);
            assert_eq!(next[8] >> 6, 0b10, "RFC 4122 variant");
            assert!(next > prev);
            prev = next;
        }
    }
}

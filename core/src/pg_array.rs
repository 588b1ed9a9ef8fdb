//! The elements of a PostgreSQL `text[]` read from its bytes, by the
//! layout rules of PostgreSQL's `array.h` (the order `deconstruct_array`
//! gives: every dimension flattened). Pure: the extension detoasts the
//! array and hands its bytes here; the verify hot path reads its two
//! arrays a call (required scopes, the key's scopes) without allocating.
//!
//! Fails closed: when the bytes are not what PostgreSQL writes (a header
//! out of range, a length running past the end, an element stored
//! compressed or as a TOAST pointer), the walk yields one
//! [`Element::Unreadable`] and ends. For required scopes that is a
//! requirement nobody meets; for stored scopes, a scope that grants
//! nothing. It never yields fewer requirements than a readable array holds.
//!
//! Byte order: varlena headers as on little-endian machines (x86-64,
//! AArch64), the only ones this extension builds for.

const _: () = assert!(cfg!(target_endian = "little"));

/// `MAXDIM` (array.h).
pub const MAXDIM: i32 = 6;
/// `sizeof(ArrayType)`: varlena header, ndim, dataoffset, elemtype.
const HEADER: usize = 16;
/// `MAXIMUM_ALIGNOF` on the platforms built for.
const MAXALIGN: usize = 8;
/// text's `typalign` ('i').
const TEXT_ALIGN: usize = 4;

/// One element of the array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element<'a> {
    Null,
    /// The element's bytes (its text, not checked for any encoding).
    Text(&'a [u8]),
    /// The array is not laid out as PostgreSQL writes it, from here on.
    Unreadable,
}

/// The walk over an array's elements; see the module.
#[derive(Debug, Clone)]
pub struct TextElements<'a> {
    bytes: &'a [u8],
    next: usize,
    /// Offset of the null bitmap (bit set = not NULL).
    nulls: Option<usize>,
    at: usize,
    count: usize,
    broken: bool,
}

fn align_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> TextElements<'a> {
    fn unreadable(bytes: &'a [u8]) -> Self {
        TextElements {
            bytes,
            next: 0,
            nulls: None,
            at: 0,
            count: 1,
            broken: true,
        }
    }

    /// The elements of `bytes`, a whole flat array datum (4-byte varlena
    /// header included) whose elements should be of type `elem_type`.
    pub fn new(bytes: &'a [u8], elem_type: u32) -> Self {
        let (Some(ndim), Some(dataoffset), Some(elemtype)) = (
            i32_at(bytes, 4),
            i32_at(bytes, 8),
            i32_at(bytes, 12).map(|t| t as u32),
        ) else {
            return TextElements::unreadable(bytes);
        };
        if ndim == 0 {
            // the empty array
            return TextElements {
                bytes,
                next: bytes.len(),
                nulls: None,
                at: 0,
                count: 0,
                broken: false,
            };
        }
        if !(1..=MAXDIM).contains(&ndim) || elemtype != elem_type {
            return TextElements::unreadable(bytes);
        }
        let ndim = ndim as usize;
        let dims_end = HEADER + 2 * 4 * ndim;
        let mut count: usize = 1;
        for d in 0..ndim {
            match i32_at(bytes, HEADER + 4 * d)
                .and_then(|dim| usize::try_from(dim).ok())
                .and_then(|dim| count.checked_mul(dim))
            {
                Some(c) => count = c,
                None => return TextElements::unreadable(bytes),
            }
        }
        let (nulls, data) = if dataoffset != 0 {
            let Ok(data) = usize::try_from(dataoffset) else {
                return TextElements::unreadable(bytes);
            };
            if dims_end + count.div_ceil(8) > data {
                return TextElements::unreadable(bytes);
            }
            (Some(dims_end), data)
        } else {
            (None, align_up(dims_end, MAXALIGN))
        };
        if data > bytes.len() && count > 0 {
            return TextElements::unreadable(bytes);
        }
        TextElements {
            bytes,
            next: data.min(bytes.len()),
            nulls,
            at: 0,
            count,
            broken: false,
        }
    }

    fn element(&mut self) -> Element<'a> {
        let p = self.next;
        let rest = &self.bytes[p..];
        let Some(&first) = rest.first() else {
            return Element::Unreadable;
        };
        // VARATT_IS_1B: a 1-byte header; 0x01 alone is a TOAST pointer
        let (len, header) = if first & 0x01 == 0x01 {
            if first == 0x01 {
                return Element::Unreadable;
            }
            (usize::from(first >> 1), 1)
        } else {
            let Some(h) = rest.get(..4) else {
                return Element::Unreadable;
            };
            let h = u32::from_le_bytes(h.try_into().expect("4 bytes"));
            // VARATT_IS_4B_U; 4B_C is compressed, never inside an array
            if h & 0x03 != 0 {
                return Element::Unreadable;
            }
            ((h >> 2) as usize, 4)
        };
        if len < header || len > rest.len() {
            return Element::Unreadable;
        }
        // att_addlength_pointer, then att_align_nominal for 'i'
        self.next = align_up(p + len, TEXT_ALIGN).min(self.bytes.len());
        Element::Text(&rest[header..len])
    }
}

impl<'a> Iterator for TextElements<'a> {
    type Item = Element<'a>;

    fn next(&mut self) -> Option<Element<'a>> {
        if self.at >= self.count {
            return None;
        }
        let i = self.at;
        self.at += 1;
        if self.broken {
            self.count = 0;
            return Some(Element::Unreadable);
        }
        if let Some(bitmap) = self.nulls {
            if self.bytes[bitmap + i / 8] & (1 << (i % 8)) == 0 {
                return Some(Element::Null);
            }
        }
        match self.element() {
            Element::Unreadable => {
                self.count = 0;
                Some(Element::Unreadable)
            }
            e => Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: u32 = 25;

    /// A 1-D text[] as PostgreSQL lays it out (construct_md_array).
    fn array(elements: &[Option<&str>]) -> Vec<u8> {
        array_dims(elements, &[elements.len() as i32])
    }

    fn array_dims(elements: &[Option<&str>], dims: &[i32]) -> Vec<u8> {
        let ndim = dims.len();
        let has_nulls = elements.iter().any(Option::is_none);
        let dims_end = HEADER + 8 * ndim;
        let data = if has_nulls {
            align_up(dims_end + elements.len().div_ceil(8), MAXALIGN)
        } else {
            align_up(dims_end, MAXALIGN)
        };
        let mut b = vec![0u8; data];
        b[4..8].copy_from_slice(&(ndim as i32).to_ne_bytes());
        b[8..12].copy_from_slice(&(if has_nulls { data as i32 } else { 0 }).to_ne_bytes());
        b[12..16].copy_from_slice(&TEXT.to_ne_bytes());
        for (d, &n) in dims.iter().enumerate() {
            b[HEADER + 4 * d..HEADER + 4 * d + 4].copy_from_slice(&n.to_ne_bytes());
            b[HEADER + 4 * (ndim + d)..HEADER + 4 * (ndim + d) + 4]
                .copy_from_slice(&1i32.to_ne_bytes());
        }
        for (i, e) in elements.iter().enumerate() {
            if let Some(s) = e {
                if has_nulls {
                    b[dims_end + i / 8] |= 1 << (i % 8);
                }
                while b.len() % TEXT_ALIGN != 0 {
                    b.push(0);
                }
                b.extend_from_slice(&(((4 + s.len()) as u32) << 2).to_le_bytes());
                b.extend_from_slice(s.as_bytes());
            }
        }
        let size = b.len() as u32;
        b[0..4].copy_from_slice(&(size << 2).to_le_bytes());
        b
    }

    fn read(bytes: &[u8]) -> Vec<Element<'_>> {
        TextElements::new(bytes, TEXT).collect()
    }

    #[test]
    fn reads_what_postgres_writes() {
        let elements = [
            Some("read"),
            None,
            Some("ünï:write"),
            Some(""),
            Some("abcde"),
        ];
        let b = array(&elements);
        let want: Vec<Element> = elements
            .iter()
            .map(|e| e.map_or(Element::Null, |s| Element::Text(s.as_bytes())))
            .collect();
        assert_eq!(read(&b), want);
        // 40 elements with a NULL at 33: the bitmap spans bytes
        let mut many: Vec<Option<String>> = (0..40).map(|i| Some(format!("s{i}"))).collect();
        many[33] = None;
        let refs: Vec<Option<&str>> = many.iter().map(Option::as_deref).collect();
        let got = read_owned(&array(&refs));
        assert_eq!(got.len(), 40);
        assert_eq!(got[33], None);
        assert_eq!(got[39].as_deref(), Some("s39"));
        // two dimensions, flattened
        let b = array_dims(&[Some("a"), Some("b"), Some("c"), Some("d")], &[2, 2]);
        assert_eq!(
            read_owned(&b),
            ["a", "b", "c", "d"].map(|s| Some(s.to_owned()))
        );
    }

    fn read_owned(bytes: &[u8]) -> Vec<Option<String>> {
        read(bytes)
            .into_iter()
            .map(|e| match e {
                Element::Null => None,
                Element::Text(t) => Some(String::from_utf8(t.to_vec()).unwrap()),
                Element::Unreadable => panic!("unreadable"),
            })
            .collect()
    }

    #[test]
    fn the_empty_array_has_no_elements() {
        let mut b = vec![0u8; HEADER];
        b[0..4].copy_from_slice(&((HEADER as u32) << 2).to_le_bytes());
        b[12..16].copy_from_slice(&TEXT.to_ne_bytes());
        assert_eq!(read(&b), vec![]);
        assert_eq!(read(&array_dims(&[], &[0])), vec![]);
    }

    #[test]
    fn what_postgres_does_not_write_is_one_unreadable_element() {
        let good = array(&[Some("read"), Some("write")]);
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        cases.push(("shorter than a header", good[..10].to_vec()));
        for (what, ndim) in [("negative ndim", -1i32), ("ndim over MAXDIM", 7)] {
            let mut b = good.clone();
            b[4..8].copy_from_slice(&ndim.to_ne_bytes());
            cases.push((what, b));
        }
        let mut b = good.clone();
        b[12..16].copy_from_slice(&23u32.to_ne_bytes());
        cases.push(("another element type", b));
        let mut b = good.clone();
        b[16..20].copy_from_slice(&(-2i32).to_ne_bytes());
        cases.push(("a negative dimension", b));
        let mut b = good.clone();
        b[8..12].copy_from_slice(&20i32.to_ne_bytes());
        cases.push(("a data offset inside the dimensions", b));
        let mut b = good.clone();
        b[8..12].copy_from_slice(&(-8i32).to_ne_bytes());
        cases.push(("a negative data offset", b));
        let mut b = good.clone();
        b[16..20].copy_from_slice(&3i32.to_ne_bytes());
        cases.push(("more elements than data", b));
        let mut b = good.clone();
        b[24] |= 0x02; // the first element's header: compressed
        cases.push(("a compressed element", b));
        let mut b = good.clone();
        b[24] = 0x01;
        cases.push(("a TOAST pointer", b));
        let mut b = good.clone();
        b[24..28].copy_from_slice(&(4000u32 << 2).to_le_bytes());
        cases.push(("a length past the end", b));
        let mut b = good.clone();
        b[24..28].copy_from_slice(&(2u32 << 2).to_le_bytes());
        cases.push(("a length shorter than its header", b));
        for (what, b) in cases {
            let got = read(&b);
            assert_eq!(got.last(), Some(&Element::Unreadable), "{what}: {got:?}");
        }
    }

    #[test]
    fn any_bytes_end_the_walk_without_panicking() {
        // a deterministic scan over corruptions of a valid array
        let good = array(&[Some("read"), None, Some("write"), Some("x")]);
        for at in 0..good.len() {
            for v in [0u8, 1, 2, 3, 0x7f, 0x80, 0xff] {
                let mut b = good.clone();
                b[at] = v;
                let n = TextElements::new(&b, TEXT).take(1_000).count();
                assert!(n < 1_000, "byte {at} = {v}: the walk must end");
            }
            let _ = read(&good[..at]);
        }
    }
}

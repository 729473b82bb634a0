//! Plain task arguments and results: MessagePack for integers, floats, bools, `()` and tuples
//! of up to four of them, written straight into a small fixed buffer and read straight back.
//!
//! A `#[worker]` constructor whose arguments are all plain (`fn square(x: u64)`, `fn add(a:
//! i32, b: i32)`) encodes them here instead of through `rmp_serde` (the choice is made at
//! compile time, by type: see `MakeTaskPlain` in `lib.rs`). The bytes are exactly what
//! `rmp_serde::to_vec` writes for the same tuple (the unit tests compare them over the edge
//! values of every type), so the worker decodes them as any other arguments. What this saves is
//! the general encoder's path: a serialiser, a writer and an I/O error type per value, and the
//! descriptor side table that arguments of other types need. In `Pool::map` over plain values
//! that path was most of the caller's time per task.
//!
//! The same holds for a worker's plain result, encoded by the worker and decoded by the
//! caller, and for the worker's decoding of plain arguments: [`PlainValue::decode_plain`]
//! reads the forms this module and `rmp` write (any width of integer that fits), and says
//! `None` for anything else, which the caller then gives to `rmp_serde` (so errors read as
//! before).
//!
//! Plain types cannot carry handles or descriptors, and their `Serialize` has no side effect,
//! so skipping the general path changes nothing but the cost.

/// The most bytes plain arguments take: an array marker and four values of at most nine
/// bytes (a marker and eight bytes of data).
pub const PLAIN_MAX: usize = 1 + 4 * 9;

/// Encoded plain arguments.
#[derive(Debug, Clone, Copy)]
pub struct PlainBuf {
    len: usize,
    buf: [u8; PLAIN_MAX],
}

impl PlainBuf {
    #[inline]
    fn new() -> PlainBuf {
        PlainBuf {
            len: 0,
            buf: [0; PLAIN_MAX],
        }
    }

    #[inline]
    fn push(&mut self, b: u8) {
        // Never out of range: PLAIN_MAX covers the largest encoding (checked by the tests);
        // `get_mut` keeps even a bug from panicking in a caller.
        if let Some(d) = self.buf.get_mut(self.len) {
            *d = b;
            self.len += 1;
        }
    }

    #[inline]
    fn extend<const N: usize>(&mut self, marker: u8, data: [u8; N]) {
        self.push(marker);
        if let Some(d) = self.buf.get_mut(self.len..self.len + N) {
            d.copy_from_slice(&data);
            self.len += N;
        }
    }

    /// The encoded bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// The buffer and its length.
    #[inline]
    pub fn into_parts(self) -> ([u8; PLAIN_MAX], usize) {
        (self.buf, self.len)
    }
}

/// One plain value: an integer of up to 64 bits, a float, or a bool.
pub trait PlainScalar: Copy {
    /// Appends the value's MessagePack encoding (the smallest form, as `rmp` writes it).
    fn put(self, out: &mut PlainBuf);
    /// Reads one value from the front of `b`; `None` if it is not one of this type.
    fn take(b: &mut &[u8]) -> Option<Self>;
}

#[inline]
fn take_n<const N: usize>(b: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = b.split_first_chunk::<N>()?;
    *b = rest;
    Some(*head)
}

/// Reads any MessagePack integer from the front of `b`, widened.
#[inline]
fn take_int(b: &mut &[u8]) -> Option<i128> {
    let [m] = take_n::<1>(b)?;
    Some(match m {
        0x00..=0x7f => i128::from(m),
        0xe0..=0xff => i128::from(m as i8),
        0xcc => i128::from(take_n::<1>(b)?[0]),
        0xcd => i128::from(u16::from_be_bytes(take_n(b)?)),
        0xce => i128::from(u32::from_be_bytes(take_n(b)?)),
        0xcf => i128::from(u64::from_be_bytes(take_n(b)?)),
        0xd0 => i128::from(take_n::<1>(b)?[0] as i8),
        0xd1 => i128::from(i16::from_be_bytes(take_n(b)?)),
        0xd2 => i128::from(i32::from_be_bytes(take_n(b)?)),
        0xd3 => i128::from(i64::from_be_bytes(take_n(b)?)),
        _ => return None,
    })
}

#[inline]
fn put_uint(v: u64, out: &mut PlainBuf) {
    if v < 128 {
        out.push(v as u8);
    } else if v < 1 << 8 {
        out.extend(0xcc, [v as u8]);
    } else if v < 1 << 16 {
        out.extend(0xcd, (v as u16).to_be_bytes());
    } else if v < 1 << 32 {
        out.extend(0xce, (v as u32).to_be_bytes());
    } else {
        out.extend(0xcf, v.to_be_bytes());
    }
}

#[inline]
fn put_sint(v: i64, out: &mut PlainBuf) {
    if v >= 0 {
        put_uint(v as u64, out)
    } else if v >= -32 {
        out.push(v as i8 as u8);
    } else if v >= -128 {
        out.extend(0xd0, [v as i8 as u8]);
    } else if v >= -32768 {
        out.extend(0xd1, (v as i16).to_be_bytes());
    } else if v >= -(1 << 31) {
        out.extend(0xd2, (v as i32).to_be_bytes());
    } else {
        out.extend(0xd3, v.to_be_bytes());
    }
}

macro_rules! plain_uint {
    ($($t:ty),*) => {$(
        impl PlainScalar for $t {
            #[inline]
            fn put(self, out: &mut PlainBuf) {
                put_uint(self as u64, out)
            }
            #[inline]
            fn take(b: &mut &[u8]) -> Option<Self> {
                <$t>::try_from(take_int(b)?).ok()
            }
        }
    )*};
}

macro_rules! plain_sint {
    ($($t:ty),*) => {$(
        impl PlainScalar for $t {
            #[inline]
            fn put(self, out: &mut PlainBuf) {
                put_sint(self as i64, out)
            }
            #[inline]
            fn take(b: &mut &[u8]) -> Option<Self> {
                <$t>::try_from(take_int(b)?).ok()
            }
        }
    )*};
}

plain_uint!(u8, u16, u32, u64, usize);
plain_sint!(i8, i16, i32, i64, isize);

impl PlainScalar for bool {
    #[inline]
    fn put(self, out: &mut PlainBuf) {
        out.push(if self { 0xc3 } else { 0xc2 });
    }
    #[inline]
    fn take(b: &mut &[u8]) -> Option<Self> {
        match take_n::<1>(b)? {
            [0xc2] => Some(false),
            [0xc3] => Some(true),
            _ => None,
        }
    }
}

impl PlainScalar for f32 {
    #[inline]
    fn put(self, out: &mut PlainBuf) {
        out.extend(0xca, self.to_bits().to_be_bytes());
    }
    #[inline]
    fn take(b: &mut &[u8]) -> Option<Self> {
        match take_n::<1>(b)? {
            [0xca] => Some(f32::from_bits(u32::from_be_bytes(take_n(b)?))),
            _ => None,
        }
    }
}

impl PlainScalar for f64 {
    #[inline]
    fn put(self, out: &mut PlainBuf) {
        out.extend(0xcb, self.to_bits().to_be_bytes());
    }
    #[inline]
    fn take(b: &mut &[u8]) -> Option<Self> {
        match take_n::<1>(b)? {
            [0xcb] => Some(f64::from_bits(u64::from_be_bytes(take_n(b)?))),
            _ => None,
        }
    }
}

/// A whole plain value: a worker's argument tuple when every argument is plain, or a plain
/// result.
pub trait PlainValue: Sized {
    /// The value's MessagePack encoding, as `rmp_serde::to_vec` makes it.
    fn encode_plain(&self) -> PlainBuf;
    /// The value, if `b` is exactly one encoding of it; `None` for anything else (the caller
    /// then decodes with `rmp_serde`, which accepts or explains more).
    fn decode_plain(b: &[u8]) -> Option<Self>;
}

impl<T: PlainScalar> PlainValue for T {
    #[inline]
    fn encode_plain(&self) -> PlainBuf {
        let mut out = PlainBuf::new();
        self.put(&mut out);
        out
    }
    #[inline]
    fn decode_plain(mut b: &[u8]) -> Option<Self> {
        let v = T::take(&mut b)?;
        b.is_empty().then_some(v)
    }
}

impl PlainValue for () {
    #[inline]
    fn encode_plain(&self) -> PlainBuf {
        let mut out = PlainBuf::new();
        // serde serialises `()` as a unit: MessagePack nil.
        out.push(0xc0);
        out
    }
    #[inline]
    fn decode_plain(b: &[u8]) -> Option<Self> {
        (b == [0xc0]).then_some(())
    }
}

macro_rules! plain_tuple {
    ($n:expr; $($t:ident $i:tt),+) => {
        impl<$($t: PlainScalar),+> PlainValue for ($($t,)+) {
            #[inline]
            fn encode_plain(&self) -> PlainBuf {
                let mut out = PlainBuf::new();
                out.push(0x90 | $n);
                $(self.$i.put(&mut out);)+
                out
            }
            #[inline]
            fn decode_plain(mut b: &[u8]) -> Option<Self> {
                if take_n::<1>(&mut b)? != [0x90 | $n] {
                    return None;
                }
                let v = ($($t::take(&mut b)?,)+);
                b.is_empty().then_some(v)
            }
        }
    };
}

plain_tuple!(1; A 0);
plain_tuple!(2; A 0, B 1);
plain_tuple!(3; A 0, B 1, C 2);
plain_tuple!(4; A 0, B 1, C 2, D 3);

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes as rmp_serde does, and decodes back (ours and rmp_serde's) to the same value.
    fn same<T: PlainValue + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug>(v: T) {
        let ours = v.encode_plain();
        let theirs = rmp_serde::to_vec(&v).expect("encode");
        assert_eq!(ours.as_slice(), &theirs[..]);
        let back = T::decode_plain(&theirs).expect("decode_plain");
        let general: T = rmp_serde::from_slice(&theirs).expect("decode");
        assert_eq!(format!("{back:?}"), format!("{general:?}"));
    }

    const U: [u64; 14] = [
        0,
        1,
        127,
        128,
        255,
        256,
        65535,
        65536,
        (1 << 32) - 1,
        1 << 32,
        u64::MAX - 1,
        u64::MAX,
        1 << 63,
        12345,
    ];
    const S: [i64; 18] = [
        0,
        -1,
        -31,
        -32,
        -33,
        -127,
        -128,
        -129,
        -32767,
        -32768,
        -32769,
        -(1 << 31) + 1,
        -(1 << 31),
        -(1 << 31) - 1,
        i64::MIN,
        i64::MIN + 1,
        127,
        i64::MAX,
    ];

    #[test]
    fn every_integer_edge_encodes_as_rmp_serde_does() {
        for &u in &U {
            same(u);
            same((u,));
            same((u as u32,));
            same((u as u16,));
            same((u as u8,));
            same((u as usize,));
        }
        for &s in &S {
            same(s);
            same((s,));
            same((s as i32,));
            same((s as i16,));
            same((s as i8,));
            same((s as isize,));
        }
    }

    #[test]
    fn floats_bools_unit_and_longer_tuples_encode_as_rmp_serde_does() {
        for f in [0.0f64, -0.0, 1.5, f64::MAX, f64::MIN_POSITIVE, f64::INFINITY, f64::NAN] {
            same((f,));
            same((f as f32,));
        }
        same((true,));
        same((false,));
        same(());
        same((1u8, -2i64));
        same((u64::MAX, i64::MIN, f64::MAX, true));
        same((1u32, 2.5f32, false));
    }

    #[test]
    fn the_largest_encoding_fits() {
        let b = (u64::MAX, i64::MIN, f64::MAX, u64::MAX).encode_plain();
        assert_eq!(b.as_slice().len(), PLAIN_MAX);
        same((u64::MAX, i64::MIN, f64::MAX, u64::MAX));
    }

    #[test]
    fn plain_arguments_decode_as_the_worker_decodes_them() {
        let b = (300u64, -5i32, 2.5f64, true).encode_plain();
        let back: (u64, i32, f64, bool) = rmp_serde::from_slice(b.as_slice()).expect("decode");
        assert_eq!(back, (300, -5, 2.5, true));
    }

    #[test]
    fn what_is_not_exactly_a_plain_value_is_left_to_rmp_serde() {
        // Out of range for the type, a wrong marker, a wrong length, trailing bytes, truncation.
        assert_eq!(
            <(u8,)>::decode_plain(&rmp_serde::to_vec(&(300u64,)).expect("enc")),
            None
        );
        assert_eq!(
            <(u64,)>::decode_plain(&rmp_serde::to_vec(&(-1i64,)).expect("enc")),
            None
        );
        assert_eq!(
            <(i8,)>::decode_plain(&rmp_serde::to_vec(&(200u64,)).expect("enc")),
            None
        );
        assert_eq!(<(u64,)>::decode_plain(&rmp_serde::to_vec(&("x",)).expect("enc")), None);
        assert_eq!(
            <(u64,)>::decode_plain(&rmp_serde::to_vec(&(1u64, 2u64)).expect("enc")),
            None
        );
        assert_eq!(
            <(u64, u64)>::decode_plain(&rmp_serde::to_vec(&(1u64,)).expect("enc")),
            None
        );
        assert_eq!(
            <(f64,)>::decode_plain(&rmp_serde::to_vec(&(1.5f32,)).expect("enc")),
            None
        );
        assert_eq!(u64::decode_plain(&[0x05, 0x00]), None);
        assert_eq!(u64::decode_plain(&[0xcf, 1, 2]), None);
        assert_eq!(u64::decode_plain(&[]), None);
        assert_eq!(<()>::decode_plain(&[0x90]), None);
        // Any integer width that fits is read, as rmp_serde reads it.
        assert_eq!(u8::decode_plain(&[0xcf, 0, 0, 0, 0, 0, 0, 0, 7]), Some(7));
        assert_eq!(i64::decode_plain(&[0xd0, 0xff]), Some(-1));
    }
}

//! MuHash3072, Bitcoin Core's order-independent set hash (`src/crypto/muhash.cpp`), as used by
//! `gettxoutsetinfo muhash` and coinstatsindex.
//!
//! Each element is hashed with SHA256; the digest keys ChaCha20, whose first 384 bytes of keystream
//! (zero nonce, counter 0) are read as a little-endian 3072-bit number. The accumulator is a fraction
//! `numerator / denominator` modulo the prime `p = 2^3072 - 1103717`: inserting multiplies the numerator,
//! removing multiplies the denominator, and the empty set is `1/1`. [`MuHash3072::finalize`] returns
//! `SHA256(numerator * denominator^-1 mod p)` over the 384 little-endian bytes of that value.
//!
//! The 3072-bit arithmetic is our own: 48 little-endian `u64` limbs, schoolbook multiplication with
//! `u128` accumulation and a reduction that folds the high half using `2^3072 ≡ 1103717 (mod p)`.
//! Everything works on stack arrays; nothing allocates.

use core::fmt;

use bitcoin::hashes::{Hash, sha256};
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};

/// `p = 2^3072 - MUHASH_PRIME_OFFSET` is the MuHash3072 modulus (Bitcoin Core's `Num3072`).
pub const MUHASH_PRIME_OFFSET: u64 = 1103717;

/// Number of 64-bit limbs in a 3072-bit number.
const LIMBS: usize = 48;
/// Bytes in a little-endian 3072-bit number.
const BYTES: usize = LIMBS * 8;
// The serialized state (numerator and denominator) is 768 bytes, as the public signatures spell out.
const _: () = assert!(2 * BYTES == 768);
// `Num3072::mul` handles the limbs two rows at a time.
const _: () = assert!(LIMBS.is_multiple_of(2));

/// `p - 2 = 2^21 * (2^3051 - 1) + INV_EXP_LOW`: the inversion exponent is 3051 one bits followed by
/// the 21 bits of `INV_EXP_LOW` (checked in the tests).
const INV_EXP_ONES: u32 = 3051;
/// Low part of the inversion exponent, see [`INV_EXP_ONES`].
const INV_EXP_LOW: u32 = 993_433;
/// Width in bits of [`INV_EXP_LOW`].
const INV_EXP_LOW_BITS: u32 = 21;

/// Splits a `u128` into its low and high 64-bit halves.
#[inline(always)]
#[expect(
    clippy::cast_possible_truncation,
    reason = "deliberate split of a u128 into two u64 halves"
)]
const fn split(t: u128) -> (u64, u64) {
    (t as u64, (t >> 64) as u64)
}

/// `acc + a * b + carry` as (low, high) limbs. The maximum, `(2^64-1) + (2^64-1)^2 + (2^64-1)`, is
/// exactly `2^128 - 1`, so the wrapping operations never wrap; they only spare the hot loop the
/// overflow checks that release builds keep on.
#[inline(always)]
fn mac(acc: u64, a: u64, b: u64, carry: u64) -> (u64, u64) {
    split(
        (u128::from(a).wrapping_mul(u128::from(b)))
            .wrapping_add(u128::from(acc))
            .wrapping_add(u128::from(carry)),
    )
}

/// A number modulo `p`, kept fully reduced (`< p`) by every operation.
#[derive(Clone, PartialEq, Eq)]
struct Num3072 {
    /// Little-endian limbs.
    limbs: [u64; LIMBS],
}

impl fmt::Debug for Num3072 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Big-endian hex, as a number is usually written.
        f.write_str("0x")?;
        for limb in self.limbs.iter().rev() {
            write!(f, "{limb:016x}")?;
        }
        Ok(())
    }
}

impl Num3072 {
    /// The number 1.
    const fn one() -> Self {
        let mut limbs = [0u64; LIMBS];
        limbs[0] = 1;
        Num3072 { limbs }
    }

    /// Whether the (reduced) value is zero.
    fn is_zero(&self) -> bool {
        self.limbs.iter().all(|&l| l == 0)
    }

    /// Whether the limbs, read as a plain 3072-bit integer, are `>= p`.
    fn is_overflow(limbs: &[u64; LIMBS]) -> bool {
        limbs[0] >= MUHASH_PRIME_OFFSET.wrapping_neg() && limbs[1..].iter().all(|&l| l == u64::MAX)
    }

    /// Reduces any 3072-bit integer (`< 2^3072 < 2p`) to `[0, p)` with at most one subtraction of `p`.
    fn reduce_once(mut limbs: [u64; LIMBS]) -> Self {
        if Self::is_overflow(&limbs) {
            // x - p = x + C - 2^3072; the upper limbs are all ones, so they become zero.
            limbs[0] = limbs[0].wrapping_add(MUHASH_PRIME_OFFSET);
            limbs[1..].fill(0);
        }
        Num3072 { limbs }
    }

    /// Reads 384 little-endian bytes and reduces modulo `p`.
    fn from_le_bytes(bytes: &[u8; BYTES]) -> Self {
        let mut limbs = [0u64; LIMBS];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(b);
        }
        Self::reduce_once(limbs)
    }

    /// Writes the value as 384 little-endian bytes.
    fn to_le_bytes(&self) -> [u8; BYTES] {
        let mut out = [0u8; BYTES];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.limbs.iter()) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    /// Reduces a 6144-bit product modulo `p`.
    fn reduce_wide(wide: &[u64; 2 * LIMBS]) -> Self {
        let (low, high) = wide.split_at(LIMBS);
        // wide = low + high * 2^3072 ≡ low + high * C.
        let mut out = [0u64; LIMBS];
        let mut carry: u64 = 0;
        for ((o, &h), &l) in out.iter_mut().zip(high.iter()).zip(low.iter()) {
            (*o, carry) = mac(l, h, MUHASH_PRIME_OFFSET, carry);
        }
        // Now value = out + carry * 2^3072 with carry <= C, so carry * C < 2^42 fits a limb.
        let mut add = carry * MUHASH_PRIME_OFFSET;
        for limb in out.iter_mut() {
            if add == 0 {
                break;
            }
            let (s, o) = limb.overflowing_add(add);
            *limb = s;
            add = u64::from(o);
        }
        if add != 0 {
            // Wrapped past 2^3072 once more: out is now tiny (< 2^42), so adding C cannot wrap again.
            out[0] += MUHASH_PRIME_OFFSET;
        }
        Self::reduce_once(out)
    }

    /// `self * other mod p`. Accepts any limbs, even `>= p`; the result is fully reduced.
    ///
    /// Schoolbook, two rows at a time: even rows accumulate into one buffer and odd rows into another,
    /// so each step runs two independent carry chains (about 20% faster than one row at a time here),
    /// and the two buffers are added at the end.
    fn mul(&self, other: &Self) -> Self {
        let (a, b) = (&self.limbs, &other.limbs);
        let mut even = [0u64; 2 * LIMBS];
        let mut odd = [0u64; 2 * LIMBS];
        for (i, pair) in a.chunks_exact(2).enumerate().map(|(k, p)| (2 * k, p)) {
            let (a0, a1) = (pair[0], pair[1]);
            let (row_e, top_e) = even[i..].split_at_mut(LIMBS);
            let (row_o, top_o) = odd[i + 1..].split_at_mut(LIMBS);
            let (mut ce, mut co) = (0u64, 0u64);
            for ((e, o), &bj) in row_e.iter_mut().zip(row_o.iter_mut()).zip(b.iter()) {
                (*e, ce) = mac(*e, a0, bj, ce);
                (*o, co) = mac(*o, a1, bj, co);
            }
            top_e[0] = ce;
            top_o[0] = co;
        }
        // even + odd = a * b < 2^6144: the final carry is zero.
        let mut carry = false;
        for (e, &o) in even.iter_mut().zip(odd.iter()) {
            let (s1, c1) = e.overflowing_add(o);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *e = s2;
            carry = c1 | c2;
        }
        Self::reduce_wide(&even)
    }

    /// `self^2 mod p`, computing each cross product once.
    fn sqr(&self) -> Self {
        let a = &self.limbs;
        let mut r = [0u64; 2 * LIMBS];
        // Off-diagonal products a[i] * a[j], i < j, accumulated at limb i + j.
        for (i, &ai) in a.iter().enumerate() {
            let (row, rest) = r[2 * i + 1..].split_at_mut(LIMBS - i - 1);
            let mut carry: u64 = 0;
            for (rj, &aj) in row.iter_mut().zip(a[i + 1..].iter()) {
                (*rj, carry) = mac(*rj, ai, aj, carry);
            }
            if let Some(top) = rest.first_mut() {
                *top = carry;
            }
        }
        // Double them (the sum is < 2^6143, so no bit is lost).
        let mut top = 0u64;
        for limb in r.iter_mut() {
            let v = *limb;
            *limb = (v << 1) | top;
            top = v >> 63;
        }
        // Add the squares a[i]^2 at limb 2i.
        let mut carry: u64 = 0;
        for (pair, &ai) in r.chunks_exact_mut(2).zip(a.iter()) {
            let (lo, hi) = split(u128::from(ai).wrapping_mul(u128::from(ai)));
            let (s0, c0) = split(
                u128::from(pair[0])
                    .wrapping_add(u128::from(lo))
                    .wrapping_add(u128::from(carry)),
            );
            pair[0] = s0;
            let (s1, c1) = split(
                u128::from(pair[1])
                    .wrapping_add(u128::from(hi))
                    .wrapping_add(u128::from(c0)),
            );
            pair[1] = s1;
            carry = c1;
        }
        Self::reduce_wide(&r)
    }

    /// `self^(2^n)`.
    fn sqr_n(&self, n: u32) -> Self {
        let mut x = self.clone();
        for _ in 0..n {
            x = x.sqr();
        }
        x
    }

    /// `self^(2^k - 1)` for `k >= 1`, by an addition chain on the bits of `k`
    /// (`k - 1` squarings and about `2 log2 k` multiplications).
    fn pow_ones(&self, k: u32) -> Self {
        debug_assert!(k >= 1);
        let mut f = self.clone();
        let mut n = 1u32; // f = self^(2^n - 1)
        for bit in (0..(31 - k.leading_zeros())).rev() {
            f = f.sqr_n(n).mul(&f);
            n *= 2;
            if (k >> bit) & 1 == 1 {
                f = f.sqr().mul(self);
                n += 1;
            }
        }
        debug_assert_eq!(n, k);
        f
    }

    /// `self^-1 mod p` by Fermat (`self^(p-2)`); zero maps to zero. About 3072 squarings.
    fn inverse(&self) -> Self {
        let mut x = self.pow_ones(INV_EXP_ONES);
        for bit in (0..INV_EXP_LOW_BITS).rev() {
            x = x.sqr();
            if (INV_EXP_LOW >> bit) & 1 == 1 {
                x = x.mul(self);
            }
        }
        x
    }

    /// The number MuHash3072 assigns to an element: ChaCha20 keystream keyed by `SHA256(data)`.
    fn from_element(data: &[u8]) -> Self {
        let key = sha256::Hash::hash(data).to_byte_array();
        let mut stream = [0u8; BYTES];
        let mut cipher = ChaCha20::new(&key.into(), &[0u8; 12].into());
        cipher.apply_keystream(&mut stream);
        Self::from_le_bytes(&stream)
    }
}

/// Bitcoin Core's MuHash3072 accumulator: a multiset hash that does not depend on insertion order
/// and supports removal.
///
/// Equality (`==`) means "same set": two accumulators are equal when their fractions
/// `numerator / denominator` are the same number modulo `p`, that is when they [`finalize`] to the same
/// digest, even if they were reached by different paths (for example inserting then removing an element
/// equals never inserting it). It costs two modular multiplications, not an inversion.
///
/// [`finalize`]: MuHash3072::finalize
///
/// # Example
///
/// ```
/// use utxo_core::muhash::MuHash3072;
///
/// let mut a = MuHash3072::new();
/// a.insert(b"coin 1");
/// a.insert(b"coin 2");
///
/// let mut b = MuHash3072::new();
/// b.insert(b"coin 2");
/// b.insert(b"coin 3");
/// b.insert(b"coin 1");
/// b.remove(b"coin 3");
///
/// assert_eq!(a.finalize(), b.finalize()); // order does not matter, removal cancels insertion
/// assert_eq!(a, b);
///
/// // The state round-trips through its 768-byte serialization.
/// assert_eq!(MuHash3072::from_bytes(&b.to_bytes()).finalize(), a.finalize());
///
/// // Core's RPC prints the digest byte-reversed (uint256::GetHex).
/// let mut display = MuHash3072::new().finalize();
/// display.reverse();
/// ```
#[derive(Clone, Debug)]
pub struct MuHash3072 {
    /// Product of the inserted elements' numbers.
    numerator: Num3072,
    /// Product of the removed elements' numbers.
    denominator: Num3072,
}

impl Default for MuHash3072 {
    /// The empty set, `1/1`.
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for MuHash3072 {
    fn eq(&self, other: &Self) -> bool {
        // Compare num1 * den1^-1 with num2 * den2^-1, where 0^-1 is taken as 0 (what finalize does).
        match (self.denominator.is_zero(), other.denominator.is_zero()) {
            (false, false) => {
                self.numerator.mul(&other.denominator) == other.numerator.mul(&self.denominator)
            }
            (true, true) => true,
            (true, false) => other.numerator.is_zero(),
            (false, true) => self.numerator.is_zero(),
        }
    }
}

impl Eq for MuHash3072 {}

impl MuHash3072 {
    /// The accumulator of the empty set (`1/1`).
    #[must_use]
    pub const fn new() -> Self {
        MuHash3072 {
            numerator: Num3072::one(),
            denominator: Num3072::one(),
        }
    }

    /// Adds one element (for a UTXO set: one coin's `TxOutSer` bytes).
    ///
    /// Costs one SHA256, 384 bytes of ChaCha20 and one 3072-bit modular multiplication.
    pub fn insert(&mut self, data: &[u8]) {
        self.numerator = self.numerator.mul(&Num3072::from_element(data));
    }

    /// Removes one element previously inserted (or records its removal ahead of its insertion: the
    /// accumulator is a fraction, so the order of the two does not matter).
    pub fn remove(&mut self, data: &[u8]) {
        self.denominator = self.denominator.mul(&Num3072::from_element(data));
    }

    /// Adds every element of `other` (multiset union, Core's `operator*=`).
    pub fn combine(&mut self, other: &MuHash3072) {
        self.numerator = self.numerator.mul(&other.numerator);
        self.denominator = self.denominator.mul(&other.denominator);
    }

    /// Removes every element of `other` (Core's `operator/=`).
    pub fn subtract(&mut self, other: &MuHash3072) {
        self.numerator = self.numerator.mul(&other.denominator);
        self.denominator = self.denominator.mul(&other.numerator);
    }

    /// The 32-byte set digest: `SHA256` of `numerator * denominator^-1 mod p` as 384 little-endian bytes.
    ///
    /// The bytes are in raw order (Core's `uint256` internal order, `HexStr`); `gettxoutsetinfo` prints
    /// them reversed. A zero denominator (only reachable through [`from_bytes`](Self::from_bytes)) is
    /// inverted to zero. This runs one modular inversion (about 3072 squarings), so callers should not
    /// finalize per element.
    #[must_use]
    pub fn finalize(&self) -> [u8; 32] {
        let value = if self.denominator == Num3072::one() {
            self.numerator.clone()
        } else {
            self.numerator.mul(&self.denominator.inverse())
        };
        sha256::Hash::hash(&value.to_le_bytes()).to_byte_array()
    }

    /// The 768-byte state: numerator then denominator, each 384 bytes little-endian and fully reduced
    /// modulo `p` (Core's serialization of `MuHash3072`).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 768] {
        let mut out = [0u8; 768];
        let (num, den) = out.split_at_mut(BYTES);
        num.copy_from_slice(&self.numerator.to_le_bytes());
        den.copy_from_slice(&self.denominator.to_le_bytes());
        out
    }

    /// Reads the 768-byte state written by [`to_bytes`](Self::to_bytes) or by Core. Every byte string
    /// is accepted: values `>= p` are reduced modulo `p`.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; 768]) -> Self {
        let mut num = [0u8; BYTES];
        let mut den = [0u8; BYTES];
        num.copy_from_slice(&bytes[..BYTES]);
        den.copy_from_slice(&bytes[BYTES..]);
        MuHash3072 {
            numerator: Num3072::from_le_bytes(&num),
            denominator: Num3072::from_le_bytes(&den),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!("../testdata/muhash.json");

    fn vectors() -> Vec<Value> {
        let v: Value = serde_json::from_str(VECTORS).expect("muhash.json parses");
        v["unit_vectors"].as_array().expect("unit_vectors").clone()
    }

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).expect("hex").try_into().expect("32 bytes")
    }

    /// Core's test helper `FromInt(i)`: the set holding the 32-byte element `{i, 0, ..., 0}`.
    fn from_int(i: u8) -> MuHash3072 {
        let mut m = MuHash3072::new();
        m.insert(&element(i));
        m
    }

    fn element(i: u8) -> [u8; 32] {
        let mut e = [0u8; 32];
        e[0] = i;
        e
    }

    fn reversed(mut d: [u8; 32]) -> [u8; 32] {
        d.reverse();
        d
    }

    #[test]
    fn vector_combine_subtract_digest() {
        let v = &vectors()[0];
        // FromInt(0) *= FromInt(1); /= FromInt(2); Finalize
        let mut m = from_int(0);
        m.combine(&from_int(1));
        m.subtract(&from_int(2));
        let d = m.finalize();
        assert_eq!(d, hex32(v["expected_digest_raw_order"].as_str().unwrap()));
        assert_eq!(
            reversed(d),
            hex32(v["expected_digest_display_order"].as_str().unwrap())
        );
    }

    #[test]
    fn vector_insert_remove_digest() {
        let all = vectors();
        assert_eq!(all[1]["same_as"], "previous vector (same expected digest)");
        let v0 = &all[0];
        // Driven by the element lists of the first vector.
        let mut m = MuHash3072::new();
        for e in v0["elements_inserted_hex"].as_array().unwrap() {
            m.insert(&hex::decode(e.as_str().unwrap()).unwrap());
        }
        for e in v0["elements_removed_hex"].as_array().unwrap() {
            m.remove(&hex::decode(e.as_str().unwrap()).unwrap());
        }
        let d = m.finalize();
        assert_eq!(d, hex32(v0["expected_digest_raw_order"].as_str().unwrap()));
        // Second vector: FromInt(0); Insert({1,0..}); Remove({2,0..}).
        let mut m2 = from_int(0);
        m2.insert(&element(1));
        m2.remove(&element(2));
        assert_eq!(
            reversed(m2.finalize()),
            hex32(all[1]["expected_digest_display_order"].as_str().unwrap())
        );
    }

    #[test]
    fn vector_serialization() {
        let v = &vectors()[2];
        let mut m = from_int(1);
        m.combine(&from_int(2));
        let expected = hex::decode(v["expected_serialization_hex"].as_str().unwrap()).unwrap();
        assert_eq!(expected.len(), 768);
        assert_eq!(m.to_bytes().as_slice(), expected.as_slice());
        // Same through the element list and insert.
        let mut m2 = MuHash3072::new();
        for e in v["elements_inserted_hex"].as_array().unwrap() {
            m2.insert(&hex::decode(e.as_str().unwrap()).unwrap());
        }
        assert_eq!(m2.to_bytes().as_slice(), expected.as_slice());
        let bytes: [u8; 768] = expected.try_into().unwrap();
        assert_eq!(MuHash3072::from_bytes(&bytes).to_bytes(), bytes);
    }

    #[test]
    fn vector_overflow() {
        let v = &vectors()[3];
        let state: [u8; 768] = hex::decode(v["serialized_state_hex"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        assert!(state[..384].iter().all(|&b| b == 0xff));
        let m = MuHash3072::from_bytes(&state);
        let d = m.finalize();
        assert_eq!(d, hex32(v["expected_digest_raw_order"].as_str().unwrap()));
        assert_eq!(
            reversed(d),
            hex32(v["expected_digest_display_order"].as_str().unwrap())
        );
        // Reduced on read: 2^3072 - 1 = p + (C - 1).
        let mut expected_num = [0u8; 384];
        expected_num[..8].copy_from_slice(&(MUHASH_PRIME_OFFSET - 1).to_le_bytes());
        assert_eq!(&m.to_bytes()[..384], &expected_num[..]);
    }

    #[test]
    fn empty_set_is_default_and_one_over_one() {
        let m = MuHash3072::default();
        assert_eq!(m, MuHash3072::new());
        let mut one = [0u8; 768];
        one[0] = 1;
        one[384] = 1;
        assert_eq!(m.to_bytes(), one);
    }

    #[test]
    fn inversion_exponent_is_p_minus_2() {
        // p - 2 = 2^3072 - C - 2 = 2^21 * (2^3051 - 1) + (2^21 - C - 2).
        assert_eq!(INV_EXP_ONES + INV_EXP_LOW_BITS, 3072);
        assert_eq!(
            u64::from(INV_EXP_LOW) + MUHASH_PRIME_OFFSET + 2,
            1u64 << INV_EXP_LOW_BITS
        );
    }

    // ---- independent slow reference arithmetic -------------------------------------------------

    fn p_limbs() -> [u64; LIMBS] {
        let mut p = [u64::MAX; LIMBS];
        p[0] = u64::MAX - MUHASH_PRIME_OFFSET + 1;
        p
    }

    fn geq(a: &[u64; LIMBS], b: &[u64; LIMBS]) -> bool {
        for i in (0..LIMBS).rev() {
            if a[i] != b[i] {
                return a[i] > b[i];
            }
        }
        true
    }

    /// a - b, assuming a >= b or accepting wrap-around modulo 2^3072.
    fn sub(a: &[u64; LIMBS], b: &[u64; LIMBS]) -> [u64; LIMBS] {
        let mut out = [0u64; LIMBS];
        let mut borrow = false;
        for i in 0..LIMBS {
            let (d1, b1) = a[i].overflowing_sub(b[i]);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            out[i] = d2;
            borrow = b1 || b2;
        }
        out
    }

    fn ref_reduce(mut a: [u64; LIMBS]) -> [u64; LIMBS] {
        let p = p_limbs();
        while geq(&a, &p) {
            a = sub(&a, &p);
        }
        a
    }

    /// (a + b) mod p for a, b < p, by add then compare-and-subtract.
    fn ref_add(a: &[u64; LIMBS], b: &[u64; LIMBS]) -> [u64; LIMBS] {
        let mut out = [0u64; LIMBS];
        let mut carry = false;
        for i in 0..LIMBS {
            let (s1, c1) = a[i].overflowing_add(b[i]);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            out[i] = s2;
            carry = c1 || c2;
        }
        let p = p_limbs();
        if carry || geq(&out, &p) {
            out = sub(&out, &p); // wraps correctly when carry is set
        }
        out
    }

    /// a * b mod p by binary double-and-add, with no folding trick.
    fn ref_mulmod(a: &[u64; LIMBS], b: &[u64; LIMBS]) -> [u64; LIMBS] {
        let a = ref_reduce(*a);
        let b = ref_reduce(*b);
        let mut acc = [0u64; LIMBS];
        for bit in (0..3072).rev() {
            acc = ref_add(&acc, &acc);
            if (b[bit / 64] >> (bit % 64)) & 1 == 1 {
                acc = ref_add(&acc, &a);
            }
        }
        acc
    }

    fn special_limbs() -> Vec<[u64; LIMBS]> {
        let p = p_limbs();
        let mut p_minus_1 = p;
        p_minus_1[0] -= 1;
        let mut p_plus_1 = p;
        p_plus_1[0] += 1;
        vec![
            [0u64; LIMBS],
            Num3072::one().limbs,
            [u64::MAX; LIMBS],
            p,
            p_minus_1,
            p_plus_1,
        ]
    }

    fn num_strategy() -> impl Strategy<Value = [u64; LIMBS]> {
        prop_oneof![
            2 => proptest::array::uniform32(any::<u64>()).prop_flat_map(|lo| {
                proptest::array::uniform16(any::<u64>()).prop_map(move |hi| {
                    let mut l = [0u64; LIMBS];
                    l[..32].copy_from_slice(&lo);
                    l[32..].copy_from_slice(&hi);
                    l
                })
            }),
            1 => (0..6usize).prop_map(|i| special_limbs()[i]),
            // Near the top: upper limbs all ones, random low limb (exercises the final reduction).
            1 => any::<u64>().prop_map(|x| { let mut l = [u64::MAX; LIMBS]; l[0] = x; l }),
            // Small values.
            1 => any::<u64>().prop_map(|x| { let mut l = [0u64; LIMBS]; l[0] = x; l }),
        ]
    }

    #[test]
    fn mul_matches_reference_on_special_values() {
        for a in special_limbs() {
            for b in special_limbs() {
                let got = Num3072 { limbs: a }.mul(&Num3072 { limbs: b });
                assert_eq!(got.limbs, ref_mulmod(&a, &b));
                let sq = Num3072 { limbs: a }.sqr();
                assert_eq!(sq.limbs, ref_mulmod(&a, &a));
            }
        }
        // (p - 1)^2 = 1.
        let mut pm1 = p_limbs();
        pm1[0] -= 1;
        assert_eq!(Num3072 { limbs: pm1 }.sqr(), Num3072::one());
    }

    #[test]
    fn reduce_once_reduces_at_and_past_p() {
        let p = p_limbs();
        assert!(Num3072::reduce_once(p).is_zero());
        let mut p5 = p;
        p5[0] += 5;
        assert_eq!(Num3072::reduce_once(p5).limbs[0], 5);
        let mut pm1 = p;
        pm1[0] -= 1;
        assert_eq!(Num3072::reduce_once(pm1).limbs, pm1);
    }

    #[test]
    fn inverse_of_zero_is_zero_and_of_one_is_one() {
        assert!(Num3072 { limbs: [0; LIMBS] }.inverse().is_zero());
        assert_eq!(Num3072::one().inverse(), Num3072::one());
    }

    fn elements() -> impl Strategy<Value = Vec<Vec<u8>>> {
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..8)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn prop_mul_and_sqr_match_reference(a in num_strategy(), b in num_strategy()) {
            let na = Num3072 { limbs: a };
            let nb = Num3072 { limbs: b };
            let got = na.mul(&nb);
            prop_assert!(!Num3072::is_overflow(&got.limbs));
            prop_assert_eq!(&got.limbs, &ref_mulmod(&a, &b));
            prop_assert_eq!(&nb.mul(&na), &got);
            prop_assert_eq!(&na.sqr().limbs, &ref_mulmod(&a, &a));
        }

        #[test]
        fn prop_to_bytes_from_bytes_roundtrip(raw in proptest::collection::vec(any::<u8>(), 768)) {
            let bytes: [u8; 768] = raw.try_into().unwrap();
            let m = MuHash3072::from_bytes(&bytes);
            let out = m.to_bytes();
            // Fully reduced output, and a fixed point from then on.
            prop_assert!(!Num3072::is_overflow(&m.numerator.limbs));
            prop_assert!(!Num3072::is_overflow(&m.denominator.limbs));
            prop_assert_eq!(MuHash3072::from_bytes(&out).to_bytes(), out);
            // Reduction agrees with the slow reference (x mod p == x * 1 mod p).
            let mut one = [0u64; LIMBS];
            one[0] = 1;
            let mut limbs = [0u64; LIMBS];
            for (l, c) in limbs.iter_mut().zip(bytes[..384].chunks_exact(8)) {
                *l = u64::from_le_bytes(c.try_into().unwrap());
            }
            prop_assert_eq!(&m.numerator.limbs, &ref_mulmod(&limbs, &one));
        }

        #[test]
        fn prop_state_roundtrip_keeps_set(elems in elements()) {
            let mut m = MuHash3072::new();
            for (i, e) in elems.iter().enumerate() {
                if i % 3 == 2 { m.remove(e) } else { m.insert(e) }
            }
            let back = MuHash3072::from_bytes(&m.to_bytes());
            prop_assert_eq!(back.to_bytes(), m.to_bytes());
            prop_assert_eq!(back, m);
        }
    }

    proptest! {
        // These invert (about 3072 squarings, ~0.3 s in unoptimised test builds): fewer cases.
        #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

        #[test]
        fn prop_inverse_is_inverse(a in num_strategy()) {
            let x = Num3072::reduce_once(a);
            prop_assume!(!x.is_zero());
            prop_assert_eq!(x.mul(&x.inverse()), Num3072::one());
        }

        #[test]
        fn prop_insertion_order_does_not_matter(elems in elements(), seed in any::<u64>()) {
            let mut a = MuHash3072::new();
            for e in &elems { a.insert(e) }
            // Deterministic shuffle driven by the seed.
            let mut shuffled = elems.clone();
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = usize::try_from((s >> 33) % (i as u64 + 1)).unwrap();
                shuffled.swap(i, j);
            }
            let mut b = MuHash3072::new();
            for e in &shuffled { b.insert(e) }
            prop_assert_eq!(a.to_bytes(), b.to_bytes());
            prop_assert_eq!(a.finalize(), b.finalize());
        }

        #[test]
        fn prop_insert_then_remove_is_empty(elems in elements()) {
            let mut m = MuHash3072::new();
            for e in &elems { m.insert(e) }
            for e in elems.iter().rev() { m.remove(e) }
            prop_assert_eq!(m.finalize(), MuHash3072::new().finalize());
            prop_assert_eq!(&m, &MuHash3072::new());
            // Removing before inserting works too (it is a fraction).
            let mut r = MuHash3072::new();
            for e in &elems { r.remove(e) }
            for e in &elems { r.insert(e) }
            prop_assert_eq!(r, MuHash3072::new());
        }

        #[test]
        fn prop_combine_subtract_match_elementwise(xs in elements(), ys in elements(), zs in elements()) {
            // Set A = xs - zs (as a fraction), set B = ys.
            let mut a = MuHash3072::new();
            for e in &xs { a.insert(e) }
            for e in &zs { a.remove(e) }
            let mut b = MuHash3072::new();
            for e in &ys { b.insert(e) }

            let mut combined = a.clone();
            combined.combine(&b);
            let mut elementwise = a.clone();
            for e in &ys { elementwise.insert(e) }
            prop_assert_eq!(combined.to_bytes(), elementwise.to_bytes());

            let mut subtracted = a.clone();
            subtracted.subtract(&b);
            let mut removed = a.clone();
            for e in &ys { removed.remove(e) }
            prop_assert_eq!(subtracted.to_bytes(), removed.to_bytes());

            // (A ∪ B) \ B = A (same set, different fraction).
            combined.subtract(&b);
            prop_assert_eq!(&combined, &a);
        }
    }

    #[test]
    fn equality_is_set_equality_not_representation() {
        let mut a = MuHash3072::new();
        a.insert(b"x");
        a.remove(b"x");
        assert_ne!(a.to_bytes(), MuHash3072::new().to_bytes());
        assert_eq!(a, MuHash3072::new());
        let mut b = MuHash3072::new();
        b.insert(b"y");
        assert_ne!(a, b);
    }

    #[test]
    fn zero_denominator_finalizes_like_zero() {
        // from_bytes accepts any state; a zero denominator inverts to zero (num * 0 = 0).
        let mut state = [0u8; 768];
        state[0] = 7;
        let m = MuHash3072::from_bytes(&state);
        let zero = MuHash3072::from_bytes(&{
            let mut s = [0u8; 768];
            s[384] = 1;
            s
        });
        assert_eq!(m.finalize(), zero.finalize());
        assert_eq!(m, zero);
    }
}

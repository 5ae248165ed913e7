//! A Robin Hood hash index of 4-byte record handles, 6 bytes per slot: the handle, an 8-bit tag
//! from the top of the hash and the slot's distance from its home bucket.
//!
//! A lookup reads one slot array (no separate control bytes), compares only entries with its own
//! home bucket and tag, and so touches the record behind a handle almost only on a true match: one
//! cache miss for the slot, one for the record. The index stores no hashes; when it grows, the
//! caller's `hasher` recomputes them from the records. Deletion shifts the following entries back
//! (no tombstones), so lookups stay short under any churn.
//!
//! Behind the `capacity` home slots lie [`OVERHANG`] more, so a run never wraps around to the
//! front: probes and shifts walk straight up the array.
//!
//! An entry lies at most [`DISTANCE_MAX`] slots past its home. A longer run grows the index while it
//! is at least a quarter full; a run that growing cannot break (hundreds of keys with one seeded
//! 64-bit hash: not seen in practice) puts the entry in an overflow list that lookups scan after the
//! table, so the index never fails.

/// Bytes per slot.
const SLOT: usize = 6;
/// Largest distance from home a slot records (stored plus one; 0 marks an empty slot).
const DISTANCE_MAX: u8 = 254;
/// Slots behind the last home slot: an entry lies at most `DISTANCE_MAX` past its home, and the
/// last slot stays empty, ending every run.
const OVERHANG: usize = DISTANCE_MAX as usize + 2;
/// Home slots of the first allocation.
const CAPACITY_MIN: usize = 16;
/// Growth adds `1 / GROWTH_DIVISOR` of the slots: with the 7/8 load bound, the load stays between
/// 0.7 and 0.875 (doubling would let it fall to 0.44, costing up to 6 bytes per coin).
const GROWTH_DIVISOR: usize = 4;

/// One slot: handle (little-endian), tag, distance + 1 (0 = empty).
type Slot = [u8; SLOT];

/// The index. See the module docs.
#[derive(Default)]
pub(crate) struct Index {
    slots: Vec<Slot>,
    /// Home slots (`slots` holds [`OVERHANG`] more; both are 0 before the first insert).
    capacity: usize,
    /// Entries that found no slot within `DISTANCE_MAX` (see the module docs); slot indices
    /// `slots.len()..` name them.
    overflow: Vec<u32>,
    /// Entries in `slots` and `overflow`.
    len: usize,
}

#[allow(clippy::cast_possible_truncation)] // The top 8 bits, on purpose.
fn tag(hash: u64) -> u8 {
    (hash >> 56) as u8
}

/// The home slot of `hash` among `capacity` slots: the low 32 bits of the hash scaled to the
/// capacity (so any capacity works; bits 32.. pick the shard, the top 8 are the tag).
#[allow(clippy::cast_possible_truncation)] // Low 32 bits on purpose; the result is < capacity.
fn home(hash: u64, capacity: usize) -> usize {
    ((u64::from(hash as u32) * capacity as u64) >> 32) as usize
}

fn handle_of(s: &Slot) -> u32 {
    u32::from_le_bytes([s[0], s[1], s[2], s[3]])
}

fn slot(handle: u32, tag: u8, distance: u8) -> Slot {
    let h = handle.to_le_bytes();
    [h[0], h[1], h[2], h[3], tag, distance + 1]
}

impl Index {
    /// Number of entries.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The slot holding the entry with `hash` for which `eq(handle)` holds.
    pub(crate) fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<usize> {
        if self.capacity != 0 {
            let t = tag(hash);
            let start = home(hash, self.capacity);
            // At most DISTANCE_MAX + 1 slots from home, all within the array (the overhang).
            let run = &self.slots[start..=start + usize::from(DISTANCE_MAX)];
            let mut d: u8 = 1;
            for s in run {
                // Empty (0), or an entry nearer its home than we are to ours: not in the table.
                if s[5] < d {
                    break;
                }
                if s[5] == d && s[4] == t && eq(handle_of(s)) {
                    return Some(start + usize::from(d - 1));
                }
                d = d.wrapping_add(1);
            }
        }
        if self.overflow.is_empty() {
            return None;
        }
        let j = self.overflow.iter().position(|&h| eq(h))?;
        Some(self.slots.len() + j)
    }

    /// Reads the home slot of `hash` and returns a byte of it, so a caller can bring the slots a
    /// later [`Index::find`] walks into the cache ahead of time (loads of many keys overlap; a
    /// probe that follows its own miss cannot).
    pub(crate) fn touch(&self, hash: u64) -> u8 {
        if self.capacity == 0 {
            return 0;
        }
        self.slots[home(hash, self.capacity)][5]
    }

    /// The handle in slot `i` (from [`Index::find`]).
    pub(crate) fn handle(&self, i: usize) -> u32 {
        match self.slots.get(i) {
            Some(s) => handle_of(s),
            None => self.overflow[i - self.slots.len()],
        }
    }

    /// Replaces the handle in slot `i` (the record moved; its hash is unchanged).
    pub(crate) fn set_handle(&mut self, i: usize, handle: u32) {
        match self.slots.get_mut(i) {
            Some(s) => s[..4].copy_from_slice(&handle.to_le_bytes()),
            None => {
                let j = i - self.slots.len();
                self.overflow[j] = handle;
            }
        }
    }

    /// Removes the entry in slot `i`, shifting the entries after it back.
    pub(crate) fn remove_at(&mut self, mut i: usize) {
        self.len -= 1;
        if i >= self.slots.len() {
            self.overflow.swap_remove(i - self.slots.len());
            return;
        }
        loop {
            // Never past the end: the overhang's last slot is empty.
            let after = i + 1;
            let s = self.slots[after];
            if s[5] <= 1 {
                self.slots[i] = [0; SLOT];
                return;
            }
            self.slots[i] = [s[0], s[1], s[2], s[3], s[4], s[5] - 1];
            i = after;
        }
    }

    /// Inserts `handle` with `hash` (not present yet); `hasher` gives the hash of any stored handle
    /// when the index grows.
    pub(crate) fn insert(&mut self, hash: u64, handle: u32, hasher: impl Fn(u32) -> u64) {
        if (self.len + 1) * 8 > self.capacity * 7 {
            self.grow(&hasher, None);
        }
        self.len += 1;
        if let Err(left) = self.place(handle, tag(hash), home(hash, self.capacity)) {
            if self.len * 4 >= self.capacity {
                self.grow(&hasher, Some(left));
            } else {
                self.overflow.push(left);
            }
        }
    }

    /// Robin Hood placement from home bucket `start`; on a too-long run, the entry left in hand.
    fn place(&mut self, mut handle: u32, mut t: u8, start: usize) -> Result<(), u32> {
        let mut i = start;
        let mut d: u8 = 0;
        loop {
            let s = self.slots[i];
            if s[5] == 0 {
                self.slots[i] = slot(handle, t, d);
                return Ok(());
            }
            if s[5] - 1 < d {
                // Take the slot of an entry nearer its home; carry that one on.
                self.slots[i] = slot(handle, t, d);
                handle = handle_of(&s);
                t = s[4];
                d = s[5] - 1;
            }
            i += 1;
            d += 1;
            if d > DISTANCE_MAX {
                return Err(handle);
            }
        }
    }

    /// Grows the slots by a quarter and re-places every entry (and `extra`, an entry in hand).
    fn grow(&mut self, hasher: &impl Fn(u32) -> u64, extra: Option<u32>) {
        let capacity = (self.capacity + self.capacity / GROWTH_DIVISOR).max(CAPACITY_MIN);
        let old = std::mem::replace(&mut self.slots, vec![[0; SLOT]; capacity + OVERHANG]);
        self.capacity = capacity;
        let overflow = std::mem::take(&mut self.overflow);
        let entries = old
            .iter()
            .filter(|s| s[5] != 0)
            .map(handle_of)
            .chain(overflow)
            .chain(extra);
        for handle in entries {
            let h = hasher(handle);
            if let Err(left) = self.place(handle, tag(h), home(h, capacity)) {
                self.overflow.push(left);
            }
        }
    }

    /// Every handle.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .filter(|s| s[5] != 0)
            .map(handle_of)
            .chain(self.overflow.iter().copied())
    }

    /// Bytes of the slot array.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn allocation_size(&self) -> usize {
        self.slots.len() * SLOT + self.overflow.len() * 4
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Handles hash to `hash_of[handle]`.
    fn check(index: &Index, hashes: &HashMap<u32, u64>) {
        assert_eq!(index.len(), hashes.len());
        for (&handle, &hash) in hashes {
            let i = index.find(hash, |h| h == handle).expect("present");
            assert_eq!(index.handle(i), handle);
        }
    }

    #[test]
    fn inserts_finds_and_removes_with_colliding_hashes() {
        let mut index = Index::default();
        let mut hashes = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for handle in 0..5_000u32 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            // Every fourth entry shares one hash: a run too long for DISTANCE_MAX, so the
            // overflow list is used too.
            let hash = if handle % 4 == 0 { 42 } else { x };
            hashes.insert(handle, hash);
            index.insert(hash, handle, |h| hashes[&h]);
        }
        check(&index, &hashes);
        assert!(!index.overflow.is_empty());
        for handle in (0..5_000u32).filter(|h| h % 3 == 0) {
            let i = index
                .find(hashes[&handle], |h| h == handle)
                .expect("present");
            index.remove_at(i);
            hashes.remove(&handle);
            assert_eq!(index.find(42, |h| h == handle), None);
        }
        check(&index, &hashes);
        assert_eq!(index.iter().count(), hashes.len());
        let i = index.find(hashes[&1], |h| h == 1).expect("present");
        index.set_handle(i, 77_777);
        assert_eq!(index.find(hashes[&1], |h| h == 77_777), Some(i));
    }

    /// Entries homed at the last slot run on into the overhang (and past DISTANCE_MAX into the
    /// overflow list); all are found, removed, and found again after growth.
    #[test]
    fn runs_at_the_end_stay_in_the_overhang() {
        let mut index = Index::default();
        let mut hashes = HashMap::new();
        for handle in 0..2_000u32 {
            // Every third entry homes at the last slot; the tags differ.
            let hash = if handle % 3 == 0 {
                (u64::from(handle) << 56) | 0xffff_ffff
            } else {
                u64::from(handle).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            };
            hashes.insert(handle, hash);
            index.insert(hash, handle, |h| hashes[&h]);
        }
        check(&index, &hashes);
        assert_eq!(index.slots.len(), index.capacity + OVERHANG);
        assert_eq!(
            index.slots.last(),
            Some(&[0; SLOT]),
            "the last slot stays empty"
        );
        for handle in (0..2_000u32).filter(|h| h % 2 == 0) {
            let i = index
                .find(hashes[&handle], |h| h == handle)
                .expect("present");
            index.remove_at(i);
            hashes.remove(&handle);
        }
        check(&index, &hashes);
    }

    #[test]
    fn empty_index_finds_nothing() {
        let index = Index::default();
        assert_eq!(index.find(1, |_| true), None);
        assert_eq!(index.allocation_size(), 0);
    }
}

//! A chunked byte arena for variable-length records, addressed by 4-byte handles.
//!
//! Records are appended to the current *head* chunk of [`CHUNK_SIZE`] bytes, each behind a one- or
//! two-byte header giving its allocated length, so a chunk can be walked record by record. A record
//! may later shrink in place (the tail of its allocation becomes dead), grow in place while it is the
//! last record of the head chunk, or move (the old copy becomes dead). Each chunk counts its dead
//! bytes; once they reach [`EVACUATE_NUM`]/[`EVACUATE_DEN`] of the chunk, the chunk is queued, and
//! its owner ([`crate::shard::Shard`]) moves the live records out and releases it. So the arena stays
//! within a small factor of its live bytes under any insert/remove churn.
//!
//! Records longer than [`ARENA_RECORD_MAX`] (long scripts, rare) live in a side store of their own
//! allocations, as do all records once a shard has used all [`CHUNKS_MAX`] chunks (2 GiB), so the
//! arena never runs out of handles.

/// Bits of a handle giving the offset inside a chunk.
pub(crate) const CHUNK_BITS: u32 = 16;
/// Bytes per chunk.
pub(crate) const CHUNK_SIZE: usize = 1 << CHUNK_BITS;
/// Most chunks one arena uses; further records go to the side store.
pub(crate) const CHUNKS_MAX: usize = 1 << (31 - CHUNK_BITS);
/// Longest record (header included) kept in a chunk; longer ones go to the side store.
pub(crate) const ARENA_RECORD_MAX: usize = 4096;
/// A chunk is evacuated once `dead * EVACUATE_DEN >= used * EVACUATE_NUM`.
pub(crate) const EVACUATE_NUM: usize = 1;
/// See [`EVACUATE_NUM`].
pub(crate) const EVACUATE_DEN: usize = 3;

/// Handles with this bit set index the side store.
const LARGE: u32 = 1 << 31;
/// Longest length a record header can express (15 bits).
const HEADER_LEN_MAX: usize = 0x7fff;
const _: () = assert!(ARENA_RECORD_MAX <= HEADER_LEN_MAX && ARENA_RECORD_MAX <= CHUNK_SIZE);

/// A record's address: `chunk << CHUNK_BITS | offset`, or `LARGE | index` in the side store.
pub(crate) type Handle = u32;

/// Bytes a header takes for a record of `len` bytes.
fn header_len(len: usize) -> usize {
    if len < 0x80 { 1 } else { 2 }
}

/// Writes the header for `len` (`len <= HEADER_LEN_MAX`) at the start of `out`; returns its length.
#[allow(clippy::cast_possible_truncation)] // len <= 0x7fff: both bytes are in range.
fn write_header(len: usize, out: &mut [u8]) -> usize {
    if len < 0x80 {
        out[0] = len as u8;
        1
    } else {
        out[0] = 0x80 | (len >> 8) as u8;
        out[1] = (len & 0xff) as u8;
        2
    }
}

/// Appends `record` behind its header (`record.len() <= HEADER_LEN_MAX`).
fn append(data: &mut Vec<u8>, record: &[u8]) {
    let mut header = [0u8; 2];
    let hl = write_header(record.len(), &mut header);
    data.extend_from_slice(&header[..hl]);
    data.extend_from_slice(record);
}

/// Reads a header: (header length, allocated record length).
fn read_header(bytes: &[u8]) -> (usize, usize) {
    let b0 = usize::from(bytes[0]);
    if b0 < 0x80 {
        (1, b0)
    } else {
        (2, ((b0 & 0x7f) << 8) | usize::from(bytes[1]))
    }
}

/// One chunk and its accounting.
struct Chunk {
    /// The bytes handed out (`0..used`) in a `CHUNK_SIZE` allocation (none while the chunk is
    /// free): appended, so a fresh chunk is never zero-filled first.
    data: Vec<u8>,
    /// Bytes handed out (records are at `0..used`).
    used: usize,
    /// Bytes of `0..used` no live record uses.
    dead: usize,
    /// Whether the chunk waits in `Arena::pending`.
    queued: bool,
}

/// Record storage for one shard. See the module docs.
pub(crate) struct Arena {
    /// Chunks this arena may use: [`CHUNKS_MAX`] (fewer only in tests).
    chunks_max: usize,
    chunks: Vec<Chunk>,
    free_chunks: Vec<u32>,
    /// The chunk new records go to.
    head: Option<u32>,
    /// Side store: one allocation per record (empty while free).
    large: Vec<Box<[u8]>>,
    free_large: Vec<u32>,
    /// Chunks whose dead bytes reached the evacuation threshold.
    pending: Vec<u32>,
}

/// Splits a chunk handle.
fn split(handle: Handle) -> (usize, usize) {
    (
        (handle >> CHUNK_BITS) as usize,
        (handle & ((1 << CHUNK_BITS) - 1)) as usize,
    )
}

/// A chunk handle from its parts (`chunk < CHUNKS_MAX`, `offset < CHUNK_SIZE`).
fn join(chunk: u32, offset: usize) -> Handle {
    (chunk << CHUNK_BITS) | u32::try_from(offset).unwrap_or(0)
}

impl Default for Arena {
    fn default() -> Self {
        Arena {
            chunks_max: CHUNKS_MAX,
            chunks: Vec::new(),
            free_chunks: Vec::new(),
            head: None,
            large: Vec::new(),
            free_large: Vec::new(),
            pending: Vec::new(),
        }
    }
}

impl Arena {
    /// The record at `handle` (its allocation: the record's own encoding tells its live length).
    pub(crate) fn get(&self, handle: Handle) -> &[u8] {
        if handle & LARGE != 0 {
            return &self.large[(handle & !LARGE) as usize];
        }
        let (chunk, offset) = split(handle);
        let data = &self.chunks[chunk].data[offset..];
        let (hl, len) = read_header(data);
        &data[hl..hl + len]
    }

    /// The allocation of the chunk record at `handle`, to edit in place (`None` for a side
    /// record).
    pub(crate) fn get_mut(&mut self, handle: Handle) -> Option<&mut [u8]> {
        if handle & LARGE != 0 {
            return None;
        }
        let (chunk, offset) = split(handle);
        let data = &mut self.chunks[chunk].data[offset..];
        let (hl, len) = read_header(data);
        Some(&mut data[hl..hl + len])
    }

    /// Records that the chunk record at `handle`, edited in place, lost `bytes` bytes of its
    /// encoding: they are dead now.
    pub(crate) fn shrunk(&mut self, handle: Handle, bytes: usize) {
        self.add_dead(handle, bytes);
    }

    /// Stores `record`; returns its handle.
    pub(crate) fn alloc(&mut self, record: &[u8]) -> Handle {
        let need = header_len(record.len()) + record.len();
        if need > ARENA_RECORD_MAX {
            return self.alloc_large(record);
        }
        let head = match self.head {
            Some(h) if self.chunks[h as usize].used + need <= CHUNK_SIZE => h,
            _ => match self.new_head() {
                Some(h) => h,
                None => return self.alloc_large(record),
            },
        };
        let chunk = &mut self.chunks[head as usize];
        let offset = chunk.used;
        append(&mut chunk.data, record);
        chunk.used += need;
        join(head, offset)
    }

    fn alloc_large(&mut self, record: &[u8]) -> Handle {
        let boxed: Box<[u8]> = record.into();
        let index = match self.free_large.pop() {
            Some(i) => {
                self.large[i as usize] = boxed;
                i
            }
            None => {
                self.large.push(boxed);
                u32::try_from(self.large.len() - 1).unwrap_or(u32::MAX)
            }
        };
        // 2^31 side records of at least one byte each cannot fit in memory: the index fits.
        LARGE | index
    }

    /// Retires the head chunk and takes a fresh one; `None` when all chunks are in use.
    fn new_head(&mut self) -> Option<u32> {
        let fresh = match self.free_chunks.pop() {
            Some(c) => c,
            None if self.chunks.len() < self.chunks_max => {
                self.chunks.push(Chunk {
                    data: Vec::new(),
                    used: 0,
                    dead: 0,
                    queued: false,
                });
                u32::try_from(self.chunks.len() - 1).ok()?
            }
            None => return None,
        };
        let chunk = &mut self.chunks[fresh as usize];
        chunk.data = Vec::with_capacity(CHUNK_SIZE);
        chunk.used = 0;
        chunk.dead = 0;
        if let Some(old) = self.head.replace(fresh) {
            self.check(old);
        }
        Some(fresh)
    }

    /// Queues (or releases, when wholly dead) chunk `c` once it is dead enough and not the head.
    fn check(&mut self, c: u32) {
        if self.head == Some(c) {
            return;
        }
        let chunk = &mut self.chunks[c as usize];
        if chunk.dead >= chunk.used {
            if chunk.queued {
                // Released now; its queue entry is skipped (see `take_pending`).
                chunk.queued = false;
            }
            self.release(c);
        } else if !chunk.queued && chunk.dead * EVACUATE_DEN >= chunk.used * EVACUATE_NUM {
            chunk.queued = true;
            self.pending.push(c);
        }
    }

    /// Frees chunk `c` (all its records are dead or moved).
    pub(crate) fn release(&mut self, c: u32) {
        let chunk = &mut self.chunks[c as usize];
        chunk.data = Vec::new();
        chunk.used = 0;
        chunk.dead = 0;
        chunk.queued = false;
        self.free_chunks.push(c);
    }

    /// Counts `bytes` of chunk record `handle` as dead.
    fn add_dead(&mut self, handle: Handle, bytes: usize) {
        let (c, _) = split(handle);
        self.chunks[c].dead += bytes;
        // c < CHUNKS_MAX fits u32.
        self.check(u32::try_from(c).unwrap_or(u32::MAX));
    }

    /// Frees the record at `handle`, whose encoding is `live` bytes long.
    pub(crate) fn free(&mut self, handle: Handle, live: usize) {
        if handle & LARGE != 0 {
            let i = handle & !LARGE;
            self.large[i as usize] = Box::default();
            self.free_large.push(i);
            return;
        }
        let (c, offset) = split(handle);
        let (hl, _) = read_header(&self.chunks[c].data[offset..]);
        self.add_dead(handle, hl + live);
    }

    /// Replaces the record at `handle` (live length `live`) with `record`; returns its handle,
    /// which differs from `handle` when the record had to move.
    pub(crate) fn replace(&mut self, handle: Handle, live: usize, record: &[u8]) -> Handle {
        if handle & LARGE != 0 {
            let fits_chunk = header_len(record.len()) + record.len() <= ARENA_RECORD_MAX;
            if !fits_chunk {
                self.large[(handle & !LARGE) as usize] = record.into();
                return handle;
            }
            let moved = self.alloc(record);
            self.free(handle, live);
            return moved;
        }
        let (c, offset) = split(handle);
        let is_head = self.head == Some(u32::try_from(c).unwrap_or(u32::MAX));
        let chunk = &mut self.chunks[c];
        let (hl, alloc) = read_header(&chunk.data[offset..]);
        if record.len() <= alloc {
            // In place: the allocation's tail beyond the new record is dead.
            chunk.data[offset + hl..offset + hl + record.len()].copy_from_slice(record);
            // Dead counted `alloc - live` before and `alloc - record.len()` after.
            chunk.dead = chunk.dead + live - record.len();
            self.check(u32::try_from(c).unwrap_or(u32::MAX));
            return handle;
        }
        let need = header_len(record.len()) + record.len();
        if is_head
            && need <= ARENA_RECORD_MAX
            && offset + hl + alloc == chunk.used
            && offset + need <= CHUNK_SIZE
        {
            // The last record of the head chunk grows in place.
            chunk.data.truncate(offset);
            append(&mut chunk.data, record);
            chunk.used = offset + need;
            chunk.dead -= alloc - live;
            return handle;
        }
        let moved = self.alloc(record);
        self.free(handle, live);
        moved
    }

    /// Takes the next chunk queued for evacuation, if any.
    pub(crate) fn take_pending(&mut self) -> Option<u32> {
        while let Some(c) = self.pending.pop() {
            let chunk = &mut self.chunks[c as usize];
            if chunk.queued {
                chunk.queued = false;
                return Some(c);
            }
        }
        None
    }

    /// The handles of every record (live or dead) in chunk `c`, in order.
    pub(crate) fn records_in(&self, c: u32, out: &mut Vec<Handle>) {
        out.clear();
        let chunk = &self.chunks[c as usize];
        let mut offset = 0;
        while offset < chunk.used {
            out.push(join(c, offset));
            let (hl, len) = read_header(&chunk.data[offset..]);
            offset += hl + len;
        }
    }

    /// Bytes the arena holds: chunks in use and side records.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn allocated_bytes(&self) -> usize {
        let chunks = self
            .chunks
            .iter()
            .filter(|c| c.data.capacity() != 0)
            .count();
        chunks * CHUNK_SIZE + self.large.iter().map(|r| r.len()).sum::<usize>()
    }

    /// Bytes of live records (headers included) in chunks, plus side records.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn live_bytes(&self) -> usize {
        let chunks: usize = self.chunks.iter().map(|c| c.used - c.dead).sum();
        chunks + self.large.iter().map(|r| r.len()).sum::<usize>()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn records_go_to_the_side_store_once_all_chunks_are_used() {
        let mut arena = Arena {
            chunks_max: 2,
            ..Arena::default()
        };
        let record = [5u8; 1000];
        let per_chunk = CHUNK_SIZE / 1002;
        // At the limit: two chunks' worth of records stay in chunks.
        let in_chunks: Vec<Handle> = (0..2 * per_chunk).map(|_| arena.alloc(&record)).collect();
        assert!(in_chunks.iter().all(|h| h & LARGE == 0));
        // One past it: the side store.
        let past = arena.alloc(&record);
        assert_ne!(past & LARGE, 0);
        assert_eq!(arena.get(past), &record[..]);
        // A freed chunk is used again.
        for &h in &in_chunks[..per_chunk] {
            arena.free(h, record.len());
        }
        assert_eq!(arena.alloc(&record) & LARGE, 0);
    }

    #[test]
    fn headers_round_trip_at_the_limits() {
        for len in [0, 1, 0x7f, 0x80, 0x81, ARENA_RECORD_MAX, HEADER_LEN_MAX] {
            let mut buf = [0u8; 2];
            let hl = write_header(len, &mut buf);
            assert_eq!(hl, header_len(len));
            assert_eq!(read_header(&buf), (hl, len));
        }
    }

    #[test]
    fn records_go_to_the_side_store_past_the_limit() {
        let mut arena = Arena::default();
        let at_limit = vec![7u8; ARENA_RECORD_MAX - 2];
        let past = vec![8u8; ARENA_RECORD_MAX - 1];
        let a = arena.alloc(&at_limit);
        let b = arena.alloc(&past);
        assert_eq!(a & LARGE, 0);
        assert_ne!(b & LARGE, 0);
        assert_eq!(arena.get(a), &at_limit[..]);
        assert_eq!(arena.get(b), &past[..]);
        arena.free(b, past.len());
        assert_eq!(arena.large[0].len(), 0);
        let c = arena.alloc(&past);
        assert_eq!(c, b, "the side slot is reused");
    }

    #[test]
    fn replace_grows_the_last_head_record_in_place_and_moves_others() {
        let mut arena = Arena::default();
        let a = arena.alloc(&[1; 10]);
        assert_eq!(
            arena.replace(a, 10, &[2; 200]),
            a,
            "last record grows in place"
        );
        assert_eq!(arena.get(a), &[2; 200][..]);
        let b = arena.alloc(&[3; 10]);
        let moved = arena.replace(a, 200, &[4; 300]);
        assert_ne!(moved, a);
        assert_eq!(arena.get(moved), &[4; 300][..]);
        assert_eq!(arena.get(b), &[3; 10][..]);
        // Shrinking stays in place.
        assert_eq!(arena.replace(moved, 300, &[5; 20]), moved);
        assert_eq!(&arena.get(moved)[..20], &[5; 20][..]);
        assert_eq!(arena.live_bytes(), 1 + 10 + 2 + 20);
    }

    #[test]
    fn dead_chunks_are_released_and_reused() {
        let mut arena = Arena::default();
        let record = [9u8; 100];
        let per_chunk = CHUNK_SIZE / 101;
        let handles: Vec<Handle> = (0..per_chunk * 3).map(|_| arena.alloc(&record)).collect();
        assert_eq!(arena.allocated_bytes(), 3 * CHUNK_SIZE);
        for &h in &handles[..per_chunk] {
            arena.free(h, record.len());
        }
        // The first chunk is wholly dead: released without evacuation.
        assert_eq!(arena.allocated_bytes(), 2 * CHUNK_SIZE);
        assert_eq!(arena.take_pending(), None);
        // A third dead queues the second chunk.
        for &h in &handles[per_chunk..per_chunk + per_chunk / EVACUATE_DEN + 1] {
            arena.free(h, record.len());
        }
        assert_eq!(arena.take_pending(), Some(1));
        let mut out = Vec::new();
        arena.records_in(1, &mut out);
        assert_eq!(out.len(), per_chunk);
    }
}

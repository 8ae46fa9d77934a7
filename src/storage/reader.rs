//! Reading records back in order from a position, as the queue's
//! per-endpoint senders do.

use bytes::Bytes;

use super::record::{self, PREFIX, Prefix};
use super::table::lock;
use super::{Log, RecordBytes, StorageError};

/// How much of a segment one file read takes in when a reader is behind
/// the batches kept in memory: records are then sliced from it instead of
/// costing two reads and an allocation each.
const READ_AHEAD_BYTES: u64 = 256 << 10;

/// A place in the log: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub segment: u64,
    pub offset: u64,
}

/// The bytes a reader last took in from a segment (see
/// [`READ_AHEAD_BYTES`]). Bytes below a segment's readable size never
/// change while the log is open, so a piece stays valid for as long as its
/// segment exists; it belongs to one open [`Log`] (after a reopen a torn
/// tail may have been cut and written again).
#[derive(Debug, Default)]
pub struct ReadAhead {
    segment: u64,
    offset: u64,
    data: Bytes,
}

impl ReadAhead {
    /// `len` bytes at `offset` of `segment`, if this piece holds them.
    fn slice(&self, segment: u64, offset: u64, len: u64) -> Option<Bytes> {
        if segment != self.segment || offset < self.offset {
            return None;
        }
        let start = usize::try_from(offset - self.offset).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        (end <= self.data.len()).then(|| self.data.slice(start..end))
    }
}

/// What [`Log::read_next`] found.
#[derive(Debug)]
pub enum Next {
    Record(RecordBytes),
    /// A damaged record was stepped over.
    Corrupt(String),
    /// Nothing more has been written yet.
    CaughtUp,
}

impl Log {
    /// A cursor at the first record whose id is at least `id` (or where
    /// the next record will be written).
    pub fn seek(&self, id: u64) -> Result<Cursor, StorageError> {
        let start = {
            let table = lock(&self.table);
            let Some((&first, _)) = table
                .segments
                .range(..=id)
                .next_back()
                .or_else(|| table.segments.iter().next())
            else {
                return Err(StorageError::Closed);
            };
            first
        };
        let mut cursor = Cursor {
            segment: start,
            offset: self.magic.len() as u64,
        };
        loop {
            let before = cursor;
            match self.peek_id(&mut cursor)? {
                Some(found) if found >= id => return Ok(before),
                Some(_) => {}
                None => return Ok(cursor),
            }
        }
    }

    /// The id of the record at `cursor` (moving `cursor` past it), reading
    /// only its prefix and header; `None` when caught up.
    fn peek_id(&self, cursor: &mut Cursor) -> Result<Option<u64>, StorageError> {
        loop {
            let Some((size, active, skip_to)) = self.locate(cursor) else {
                return Ok(None);
            };
            if let Some(to) = skip_to {
                cursor.offset = to;
                continue;
            }
            if cursor.offset >= size {
                if active || !self.next_segment(cursor) {
                    return Ok(None);
                }
                continue;
            }
            let Some(p) = self.read_here(cursor, PREFIX as u64)? else {
                continue;
            };
            let Ok(prefix) = Prefix::parse(p.as_slice().try_into().expect("12 bytes")) else {
                if !self.next_segment(cursor) {
                    return Ok(None);
                }
                continue;
            };
            let header = self.read_at(
                cursor.segment,
                cursor.offset + PREFIX as u64,
                u64::from(prefix.header_len),
            );
            cursor.offset += prefix.record_len();
            if let Ok(head) = header.as_deref().map(record::decode_head) {
                return Ok(head.ok().map(|h| h.id));
            }
        }
    }

    /// Reads the record at `cursor` and moves past it. A segment deleted
    /// under the cursor is left for the next one. `ahead` is the reader's
    /// own: keep it with the cursor from one call to the next.
    pub fn read_next(
        &self,
        cursor: &mut Cursor,
        ahead: &mut ReadAhead,
    ) -> Result<Next, StorageError> {
        loop {
            let Some((size, active, skip_to)) = self.locate(cursor) else {
                return Ok(Next::CaughtUp);
            };
            if let Some(to) = skip_to {
                cursor.offset = to;
                return Ok(Next::Corrupt("damage found when the log was opened".into()));
            }
            if cursor.offset >= size {
                if active || !self.next_segment(cursor) {
                    return Ok(Next::CaughtUp);
                }
                continue;
            }
            if let Some(record) = self.recent.record_at(cursor.segment, cursor.offset)
                && cursor.offset + record.len() <= size
            {
                cursor.offset += record.len();
                return Ok(Next::Record(record));
            }
            let Some(p) = self.read_ahead(cursor, PREFIX as u64, size, ahead)? else {
                continue;
            };
            let prefix = match Prefix::parse(p[..].try_into().expect("12 bytes")) {
                Ok(prefix) if cursor.offset + prefix.record_len() <= size => prefix,
                Ok(_) | Err(_) => {
                    let why = format!(
                        "unreadable record framing at offset {} of segment {:016x}; the rest of the segment is skipped",
                        cursor.offset, cursor.segment
                    );
                    // No way to find the next record in this segment.
                    if !self.next_segment(cursor) {
                        cursor.offset = size;
                    }
                    return Ok(Next::Corrupt(why));
                }
            };
            let Some(buf) = self.read_ahead(cursor, prefix.record_len(), size, ahead)? else {
                continue;
            };
            cursor.offset += prefix.record_len();
            return match record::verify(&buf) {
                Ok(_) if record::decode_head(&buf[PREFIX..prefix.body_start()]).is_ok() => {
                    Ok(Next::Record(RecordBytes { prefix, bytes: buf }))
                }
                Ok(_) => Ok(Next::Corrupt("undecodable record header".into())),
                Err(e) => Ok(Next::Corrupt(e.to_string())),
            };
        }
    }

    /// `len` bytes at the cursor, from `ahead` or from a new piece of up to
    /// [`READ_AHEAD_BYTES`] (never past `size`, the readable end); `None`
    /// when the segment was deleted since it was located.
    fn read_ahead(
        &self,
        cursor: &Cursor,
        len: u64,
        size: u64,
        ahead: &mut ReadAhead,
    ) -> Result<Option<Bytes>, StorageError> {
        if let Some(bytes) = ahead.slice(cursor.segment, cursor.offset, len) {
            return Ok(Some(bytes));
        }
        let want = len.max(READ_AHEAD_BYTES.min(size.saturating_sub(cursor.offset)));
        let Some(data) = self.read_here(cursor, want)? else {
            return Ok(None);
        };
        *ahead = ReadAhead {
            segment: cursor.segment,
            offset: cursor.offset,
            data: Bytes::from(data),
        };
        Ok(ahead.slice(cursor.segment, cursor.offset, len))
    }

    /// `len` bytes at the cursor; `None` when its segment was deleted since
    /// it was located (the next [`Log::locate`] moves the cursor on).
    pub(super) fn read_here(
        &self,
        cursor: &Cursor,
        len: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        match self.read_at(cursor.segment, cursor.offset, len) {
            Ok(buf) => Ok(Some(buf)),
            Err(_) if !lock(&self.table).segments.contains_key(&cursor.segment) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The readable size of the cursor's segment, whether it is the active
    /// one, and where to jump when the cursor sits at the start of a
    /// damaged range. A cursor whose segment was deleted moves to the
    /// oldest remaining segment after it.
    fn locate(&self, cursor: &mut Cursor) -> Option<(u64, bool, Option<u64>)> {
        let table = lock(&self.table);
        let last = *table.segments.keys().next_back()?;
        if !table.segments.contains_key(&cursor.segment) {
            let (&next, _) = table.segments.range(cursor.segment..).next()?;
            *cursor = Cursor {
                segment: next,
                offset: self.magic.len() as u64,
            };
        }
        let seg = &table.segments[&cursor.segment];
        let skip = seg
            .skips
            .iter()
            .find(|(from, _)| *from == cursor.offset)
            .map(|(_, to)| *to);
        Some((seg.size, cursor.segment == last, skip))
    }

    /// Moves to the start of the next segment; false when there is none.
    fn next_segment(&self, cursor: &mut Cursor) -> bool {
        let table = lock(&self.table);
        match table.segments.range(cursor.segment + 1..).next() {
            Some((&next, _)) => {
                *cursor = Cursor {
                    segment: next,
                    offset: self.magic.len() as u64,
                };
                true
            }
            None => false,
        }
    }
}

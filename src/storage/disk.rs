//! The file operations that change what the log holds on disk: creating,
//! writing, cutting, syncing, renaming and deleting files. Every such
//! operation of the log goes through [`Disk`], so that its tests can make
//! any of them fail the way a disk does (EIO, ENOSPC, a short write) and
//! check what the log promises afterwards. Outside tests `Disk` has no
//! fields and each method is the `std` call it wraps. Reads are not
//! routed here: a failed read is an error the caller sees, never a state
//! the log must recover from.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

#[cfg(test)]
pub(crate) use faults::{Fault, Faults, Op};

#[derive(Debug, Clone, Default)]
pub(crate) struct Disk {
    #[cfg(test)]
    faults: std::sync::Arc<Faults>,
}

impl Disk {
    /// A disk whose operations fail as `faults` says.
    #[cfg(test)]
    pub fn failing_with(faults: std::sync::Arc<Faults>) -> Disk {
        Disk { faults }
    }

    #[cfg(test)]
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Creates (or empties) `path`, opened for reading and writing.
    #[inline]
    pub fn create(&self, path: &Path) -> io::Result<File> {
        #[cfg(test)]
        self.faults.check(Op::Create)?;
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Writes all of `buf` at `offset`.
    #[inline]
    pub fn write_at(&self, file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
        #[cfg(test)]
        if let Some(written) = self.faults.short_write(buf.len())? {
            file.write_all_at(&buf[..written], offset)?;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        file.write_all_at(buf, offset)
    }

    #[inline]
    pub fn set_len(&self, file: &File, len: u64) -> io::Result<()> {
        #[cfg(test)]
        self.faults.check(Op::SetLen)?;
        file.set_len(len)
    }

    /// Reserves blocks for `len` bytes at `offset` without changing the
    /// file's size (`fallocate` with `FALLOC_FL_KEEP_SIZE`): a hint, whose
    /// failure (ENOSPC, a file system without it) costs only the speed-up.
    #[inline]
    pub fn allocate(&self, file: &File, offset: u64, len: u64) -> io::Result<()> {
        #[cfg(test)]
        self.faults.check(Op::Allocate)?;
        rustix::fs::fallocate(file, rustix::fs::FallocateFlags::KEEP_SIZE, offset, len)
            .map_err(io::Error::from)
    }

    /// `fdatasync`: the data written, and the size when it grew.
    #[inline]
    pub fn sync_data(&self, file: &File) -> io::Result<()> {
        #[cfg(test)]
        self.faults.check(Op::SyncData)?;
        file.sync_data()
    }

    /// `fsync`: data and metadata.
    #[inline]
    pub fn sync_all(&self, file: &File) -> io::Result<()> {
        #[cfg(test)]
        self.faults.check(Op::SyncAll)?;
        file.sync_all()
    }

    /// Makes the directory's entries (files created, renamed, deleted)
    /// durable.
    #[inline]
    pub fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(test)]
        self.faults.check(Op::SyncDir)?;
        File::open(dir).and_then(|d| d.sync_all())
    }

    #[inline]
    pub fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        #[cfg(test)]
        self.faults.check(Op::Rename)?;
        std::fs::rename(from, to)
    }

    #[inline]
    pub fn remove(&self, path: &Path) -> io::Result<()> {
        #[cfg(test)]
        self.faults.check(Op::Remove)?;
        std::fs::remove_file(path)
    }
}

#[cfg(test)]
mod faults {
    use std::io;
    use std::sync::Mutex;

    /// An operation of [`super::Disk`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Op {
        Create,
        Write,
        SetLen,
        SyncData,
        SyncAll,
        SyncDir,
        Rename,
        Remove,
        Allocate,
    }

    /// How an operation fails.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Fault {
        /// Nothing is done; the call fails with this errno.
        Errno(i32),
        /// (Writes only.) This many thousandths of the buffer are written,
        /// then the call fails with ENOSPC, as when the disk fills up
        /// during a write.
        Short { permille: u16 },
    }

    /// The faults a test has armed: each fires once, on the next call of
    /// its operation.
    #[derive(Debug, Default)]
    pub(crate) struct Faults {
        armed: Mutex<Vec<(Op, Fault)>>,
        fired: Mutex<Vec<(Op, Fault)>>,
    }

    impl Faults {
        /// The next call of `op` fails as `fault` says.
        pub fn arm(&self, op: Op, fault: Fault) {
            lock(&self.armed).push((op, fault));
        }

        /// Disarms every fault that has not fired.
        pub fn clear(&self) {
            lock(&self.armed).clear();
        }

        /// The faults that fired since the last call, in order.
        pub fn take_fired(&self) -> Vec<(Op, Fault)> {
            std::mem::take(&mut *lock(&self.fired))
        }

        fn take(&self, op: Op) -> Option<Fault> {
            let mut armed = lock(&self.armed);
            let i = armed.iter().position(|(o, _)| *o == op)?;
            let (_, fault) = armed.remove(i);
            lock(&self.fired).push((op, fault));
            Some(fault)
        }

        pub(super) fn check(&self, op: Op) -> io::Result<()> {
            match self.take(op) {
                None => Ok(()),
                Some(Fault::Errno(errno)) => Err(io::Error::from_raw_os_error(errno)),
                Some(Fault::Short { .. }) => Err(io::Error::from_raw_os_error(libc::EIO)),
            }
        }

        /// For a write of `len` bytes: `Some(n)` when only `n` of them
        /// are to be written before it fails.
        pub(super) fn short_write(&self, len: usize) -> io::Result<Option<usize>> {
            match self.take(Op::Write) {
                None => Ok(None),
                Some(Fault::Errno(errno)) => Err(io::Error::from_raw_os_error(errno)),
                Some(Fault::Short { permille }) => {
                    Ok(Some(len * usize::from(permille.min(999)) / 1000))
                }
            }
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn armed_faults_fire_once_in_order_and_a_short_write_leaves_its_part() {
        let dir = tempfile::tempdir().unwrap();
        let faults = Arc::new(Faults::default());
        let disk = Disk::failing_with(Arc::clone(&faults));
        let path = dir.path().join("f");
        faults.arm(Op::Create, Fault::Errno(libc::ENOSPC));
        let err = disk.create(&path).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        let file = disk.create(&path).unwrap();

        faults.arm(Op::Write, Fault::Short { permille: 500 });
        faults.arm(Op::SyncData, Fault::Errno(libc::EIO));
        let err = disk.write_at(&file, b"0123456789", 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(std::fs::read(&path).unwrap(), b"01234");
        assert_eq!(
            disk.sync_data(&file).unwrap_err().raw_os_error(),
            Some(libc::EIO)
        );
        disk.sync_data(&file).unwrap();

        faults.arm(Op::Remove, Fault::Errno(libc::EIO));
        faults.clear();
        disk.remove(&path).unwrap();
        let fired = faults.take_fired();
        assert_eq!(
            fired,
            [
                (Op::Create, Fault::Errno(libc::ENOSPC)),
                (Op::Write, Fault::Short { permille: 500 }),
                (Op::SyncData, Fault::Errno(libc::EIO)),
            ]
        );
        assert!(faults.take_fired().is_empty());
    }
}

//! A tar archive one engine request reads, streamed into another request that writes it: counted as it passes, cut at the first read error, and checked for its end-of-archive block.
//!
//! The writing side (bollard's `upload_to_container_streaming`, `import_image_stream`) takes
//! a stream of plain chunks, which cannot carry an error. So a read error is kept aside and
//! the body ends there; the writer then sees an archive cut short, and [`ArchiveRelay::finish`]
//! reports the read error rather than whatever the writer made of the cut.

use std::sync::{Arc, Mutex, MutexGuard};

use bollard::errors::Error as BollardError;
use futures::stream::{Stream, StreamExt};

use super::errors::map_error;
use crate::runtime::{RuntimeError, RuntimeResult};

/// What passed through a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ArchiveTotals {
    /// The archive's own length: headers, padding and end-of-archive blocks included.
    pub(super) archive_bytes: u64,
    /// The data of its regular files only.
    pub(super) file_bytes: u64,
}

/// What the body of a relayed archive leaves behind for [`ArchiveRelay::finish`].
pub(super) struct ArchiveRelay {
    /// Names the archive in errors ("volume archive").
    what: &'static str,
    read_error: Arc<Mutex<Option<RuntimeError>>>,
    sizer: Arc<Mutex<TarSizer>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only a panic inside `feed` could poison it, and the counts stay usable.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ArchiveRelay {
    /// Turns `source`, an archive the engine streams, into the body of the request that writes
    /// it. Every chunk is counted and its length handed to `on_chunk` (progress) as it passes;
    /// the first read error ends the body and is kept for [`ArchiveRelay::finish`].
    pub(super) fn new<B>(
        what: &'static str,
        source: impl Stream<Item = Result<B, BollardError>> + Send + 'static,
        on_chunk: impl Fn(usize) + Send + 'static,
    ) -> (Self, impl Stream<Item = B> + Send + 'static)
    where
        B: AsRef<[u8]> + Send + 'static,
    {
        let relay = Self {
            what,
            read_error: Arc::default(),
            sizer: Arc::default(),
        };
        let (seen_error, counted) = (relay.read_error.clone(), relay.sizer.clone());
        let body = source
            .map(move |chunk| match chunk {
                Ok(bytes) => {
                    locked(&counted).feed(bytes.as_ref());
                    on_chunk(bytes.as_ref().len());
                    Some(bytes)
                }
                Err(e) => {
                    *locked(&seen_error) = Some(map_error(&format!("read {what}"), e));
                    None
                }
            })
            .take_while(|chunk| futures::future::ready(chunk.is_some()))
            .filter_map(futures::future::ready);
        (relay, body)
    }

    /// What was relayed, once the writing request answered `written`. A read error comes
    /// first: the writer then saw an archive cut short, and its own error says less. Then the
    /// writer's error. Then a missing end-of-archive block: a stream the engine cut between two
    /// entries ends cleanly and may be taken as whole, so only that block tells a partial
    /// archive from a whole one.
    pub(super) fn finish(self, written: RuntimeResult<()>) -> RuntimeResult<ArchiveTotals> {
        if let Some(error) = locked(&self.read_error).take() {
            return Err(error);
        }
        written?;
        let sizer = locked(&self.sizer);
        if !sizer.ended {
            return Err(RuntimeError::Failed(format!(
                "the {} ended before its end-of-archive block: the copy was cut short",
                self.what
            )));
        }
        Ok(ArchiveTotals {
            archive_bytes: sizer.archive_bytes,
            file_bytes: sizer.file_bytes,
        })
    }
}

/// Reads a tar stream's headers as it passes: the sizes of regular files (the archive's own
/// length includes headers and padding) and whether the end-of-archive block came.
#[derive(Debug, Default)]
struct TarSizer {
    /// Bytes of the current header read so far.
    header: Vec<u8>,
    /// Bytes of entry data (with padding) still to pass before the next header.
    skip: u64,
    /// Every byte that passed, the end-of-archive blocks and anything after them included.
    archive_bytes: u64,
    /// Regular files' bytes so far.
    file_bytes: u64,
    /// The end-of-archive block was seen.
    ended: bool,
}

impl TarSizer {
    fn feed(&mut self, mut chunk: &[u8]) {
        self.archive_bytes += chunk.len() as u64;
        while !chunk.is_empty() && !self.ended {
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                self.skip -= n as u64;
                chunk = &chunk[n..];
                continue;
            }
            let n = (512 - self.header.len()).min(chunk.len());
            self.header.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            if self.header.len() == 512 {
                self.entry();
                self.header.clear();
            }
        }
    }

    fn entry(&mut self) {
        let header = &self.header;
        if header.iter().all(|b| *b == 0) {
            self.ended = true;
            return;
        }
        let size = tar_number(&header[124..136]);
        // Regular files ('0', or NUL in old archives, '7' contiguous); PAX and GNU long-name
        // entries carry metadata, links and directories nothing.
        if matches!(header[156], b'0' | 0 | b'7') {
            self.file_bytes += size;
        }
        self.skip = size.div_ceil(512) * 512;
    }
}

/// A tar number field: octal digits, or base-256 when its first byte's high bit is set.
pub(super) fn tar_number(field: &[u8]) -> u64 {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        return field[1..]
            .iter()
            .fold(u64::from(field[0] & 0x7f), |n, b| (n << 8) | u64::from(*b));
    }
    field
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .fold(0, |n, b| (n << 3) | u64::from(b - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}\0");
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h
    }

    /// One 700-byte file, a PAX header and a 3-byte file, then the end-of-archive blocks.
    fn archive() -> Vec<u8> {
        let mut tar = header("./", b'5', 0);
        tar.extend(header("./a", b'0', 700));
        tar.extend(vec![7u8; 1024]);
        tar.extend(header("./PaxHeaders/b", b'x', 30));
        tar.extend(vec![1u8; 512]);
        tar.extend(header("./b", b'0', 3));
        tar.extend(vec![1u8; 512]);
        tar.extend(vec![0u8; 1024]);
        tar
    }

    #[test]
    fn the_sizer_counts_regular_files_across_any_chunking() {
        let tar = archive();
        for chunk in [1, 7, 512, 1000, tar.len()] {
            let mut sizer = TarSizer::default();
            for piece in tar.chunks(chunk) {
                sizer.feed(piece);
            }
            assert_eq!(sizer.file_bytes, 703, "chunks of {chunk}");
            assert_eq!(sizer.archive_bytes, tar.len() as u64, "chunks of {chunk}");
            assert!(sizer.ended);
        }
    }

    #[test]
    fn tar_numbers_are_octal_or_base_256() {
        assert_eq!(tar_number(b"00000001750\0"), 0o1750);
        assert_eq!(tar_number(b" 1750 \0"), 0o1750);
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 2;
        big[10] = 1;
        assert_eq!(tar_number(&big), 258);
    }

    /// Relays `chunks` into a writer that takes everything and answers `written`.
    async fn relay(
        chunks: Vec<Result<Vec<u8>, BollardError>>,
        written: RuntimeResult<()>,
    ) -> (RuntimeResult<ArchiveTotals>, usize, usize) {
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let told = seen.clone();
        let (relay, body) = ArchiveRelay::new("test archive", futures::stream::iter(chunks), {
            move |n| {
                told.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
        });
        let delivered: usize = body.map(|b| b.len()).collect::<Vec<_>>().await.iter().sum();
        (
            relay.finish(written),
            delivered,
            seen.load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    #[tokio::test]
    async fn a_whole_archive_is_relayed_and_counted() {
        let tar = archive();
        let chunks = tar.chunks(300).map(|c| Ok(c.to_vec())).collect();
        let (totals, delivered, progress) = relay(chunks, Ok(())).await;
        assert_eq!(
            totals.unwrap(),
            ArchiveTotals {
                archive_bytes: tar.len() as u64,
                file_bytes: 703
            }
        );
        assert_eq!((delivered, progress), (tar.len(), tar.len()));
    }

    #[tokio::test]
    async fn a_read_error_ends_the_body_and_wins_over_the_writers_error() {
        let tar = archive();
        let chunks = vec![
            Ok(tar[..600].to_vec()),
            Err(BollardError::RequestTimeoutError),
            Ok(tar[600..].to_vec()),
        ];
        let refused = Err(RuntimeError::Failed("unexpected EOF".into()));
        let (totals, delivered, _) = relay(chunks, refused).await;
        assert!(
            matches!(&totals, Err(RuntimeError::Unavailable(m)) if m.starts_with("read test archive")),
            "{totals:?}"
        );
        assert_eq!(delivered, 600, "nothing after the error is sent");
    }

    #[tokio::test]
    async fn the_writers_error_comes_next_then_a_missing_end_block() {
        let tar = archive();
        let whole = || vec![Ok(tar.clone())];
        let refused = RuntimeError::Failed("no space left on device".into());
        let (totals, _, _) = relay(whole(), Err(refused.clone())).await;
        assert_eq!(totals, Err(refused));
        // Cut between two entries: the writer may have taken it, the copy is still short.
        let cut = vec![Ok(tar[..512 * 4].to_vec())];
        let (totals, _, _) = relay(cut, Ok(())).await;
        assert!(
            matches!(&totals, Err(RuntimeError::Failed(m)) if m.contains("end-of-archive")),
            "{totals:?}"
        );
    }
}

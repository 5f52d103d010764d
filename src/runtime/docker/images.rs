//! Copying an image from one engine to another: the source's `docker save` archive streamed into the target's `docker load`, so the image keeps its id, labels and tag.
//!
//! ec2d writes nothing to disk and holds no more than a chunk in memory: the export's answer
//! is the import's body ([`ArchiveRelay`]), so either engine may be remote.

use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::image::ImportImageOptions;
use bollard::models::BuildInfo;
use bollard::Docker;
use futures::stream::{Stream, StreamExt};
use tracing::debug;

use super::archive::ArchiveRelay;
use super::errors::{map_error, map_stream_error};
use super::image_id_of;
use crate::runtime::{CopyProgress, RuntimeError, RuntimeResult};

/// How long one copy may take, end to end. bollard's timeout covers a request until its
/// answer's headers, and both ends answer late: the source (Docker 20.10's saver) writes the
/// whole image into a temporary directory before its first byte, and the target answers
/// `load` only once it has read and registered the whole archive. So the import's timeout
/// bounds the whole copy.
const IMAGE_COPY_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Copies `reference` from `source` to `target` (two clients, possibly of one engine);
/// returns the archive's bytes.
pub(super) async fn copy(
    source: &Docker,
    target: &Docker,
    reference: &str,
    progress: &CopyProgress,
) -> RuntimeResult<u64> {
    // Asked first, so a missing image is `NotFound` before any byte moves, and so the copy can
    // be checked against the id it must arrive with.
    let id = image_id_of(source, reference).await?;
    progress.begin();
    let export = source
        .clone()
        .with_timeout(IMAGE_COPY_TIMEOUT)
        .export_image(reference);
    let counted = progress.clone();
    let (relay, body) = ArchiveRelay::new("image archive", export, move |n| {
        counted.add(n as u64);
    });
    let target = target.clone().with_timeout(IMAGE_COPY_TIMEOUT);
    // Quiet: no progress bars, only the "Loaded image" lines and errors.
    let answer = target.import_image_stream(ImportImageOptions { quiet: true }, body, None);
    let loaded = read_load_answer(answer).await;
    let bytes = relay.finish(loaded)?.archive_bytes;
    // The load verified every layer against the image's config; the id (the config's digest)
    // says the config itself and the tag arrived.
    let copied = match image_id_of(&target, reference).await {
        Err(RuntimeError::NotFound(message)) => Err(RuntimeError::Failed(format!(
            "the target loaded the archive but has no {reference}: {message}"
        ))),
        other => other,
    }?;
    if copied != id {
        return Err(RuntimeError::Failed(format!(
            "{reference} arrived as {copied}, not {id}"
        )));
    }
    debug!(%reference, %id, bytes, "copied image");
    Ok(bytes)
}

/// Reads the target's answer to `POST /images/load` to its end: the engine writes a failed load
/// into that answer, never into its status.
async fn read_load_answer(
    answer: impl Stream<Item = Result<BuildInfo, BollardError>>,
) -> RuntimeResult<()> {
    let mut answer = std::pin::pin!(answer);
    while let Some(line) = answer.next().await {
        match line {
            Ok(_) => {}
            Err(BollardError::DockerStreamError { error }) => {
                return Err(map_stream_error("load image", &error))
            }
            Err(e) => return Err(map_error("load image", e)),
        }
    }
    Ok(())
}

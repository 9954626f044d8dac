//! How an [`ExecutionResult`] travels out of a Job pod: gzip-compressed JSON under
//! [`RESULT_KEY`] in a ConfigMap the operator reads, and a one-line [`summary`] for the pod's
//! termination message. The operator decodes with [`decode`]; both sides share these names.
//!
//! Size bound: a ConfigMap holds at most 1 MiB, so the encoded result is kept under
//! [`MAX_ENCODED_BYTES`]. A 3,000-resource plan compresses to a small fraction of that, so
//! reports normally travel intact. Only beyond the bound are the longest report lists cut
//! (drift resources, their changed attributes, planned changes), each cut counted in the
//! report's own `*Omitted` field so a person sees how much is missing.

use std::io::{Read, Write};

use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use pangea_api::exec::{ExecutionKind, ExecutionResult, Outcome};
use serde::Serialize;

/// ConfigMap `binaryData` key of the encoded result.
pub const RESULT_KEY: &str = "result.json.gz";
/// ConfigMap `data` key of the one-line summary.
pub const SUMMARY_KEY: &str = "summary";
/// Key of the execution's [`pangea_api::exec::Progress`] (plain JSON), written before the
/// result, while the execution runs.
pub const PROGRESS_KEY: &str = "progress.json";
/// Annotation the executor sets on the result ConfigMap in the same patch as the result, so
/// the operator learns of it from a metadata-only watch.
pub const DELIVERED_ANNOTATION: &str = "pangea.io/result-delivered";
/// Largest encoded result. The apiserver refuses a ConfigMap whose `data` and `binaryData`
/// (counted decoded) exceed 1 MiB together; the rest leaves room for the summary.
pub const MAX_ENCODED_BYTES: usize = 900 * 1024;
/// Largest decompressed result [`decode`] accepts: far above any real result (≈ 70× the
/// encoded bound), low enough that a decompression bomb cannot exhaust the operator's memory.
pub const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;
/// Kubernetes keeps at most 4096 bytes of a termination message.
pub const MAX_SUMMARY_BYTES: usize = 4096;

/// Why a result could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Serializing or parsing the result JSON failed.
    #[error("the result is not valid result JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Compressing or decompressing failed (e.g. the input is not gzip).
    #[error("the result is not valid gzip: {0}")]
    Gzip(#[source] std::io::Error),
    /// The decompressed result is larger than [`MAX_DECODED_BYTES`].
    #[error("the decompressed result exceeds {MAX_DECODED_BYTES} bytes")]
    TooLargeDecoded,
    /// Even with every report list cut, the result does not fit (e.g. huge outputs, which
    /// are never cut: another template may depend on each of them).
    #[error(
        "the result is {bytes} bytes compressed with every report list cut; the bounds are {MAX_ENCODED_BYTES} compressed and {MAX_DECODED_BYTES} decompressed"
    )]
    TooLarge {
        /// Encoded size with every cuttable list emptied.
        bytes: usize,
    },
}

/// Encodes `result` as gzip-compressed JSON of at most [`MAX_ENCODED_BYTES`] that [`decode`]
/// accepts (at most [`MAX_DECODED_BYTES`] of JSON), cutting the longest report lists (counted
/// in their `*Omitted` fields) only when it would not fit.
pub fn encode(result: &ExecutionResult) -> Result<Vec<u8>, CodecError> {
    encode_within(result, Bounds::DELIVERY)
}

/// What an encoded result must fit.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    /// Compressed bytes (the ConfigMap).
    encoded: usize,
    /// Decompressed bytes (what the decoder accepts).
    decoded: usize,
}

impl Bounds {
    const DELIVERY: Self = Self {
        encoded: MAX_ENCODED_BYTES,
        decoded: MAX_DECODED_BYTES as usize,
    };
}

/// One encoding of a result and the size of the JSON inside it.
struct Encoded {
    gzip: Vec<u8>,
    json_len: usize,
}

impl Encoded {
    fn of(result: &ExecutionResult) -> Result<Self, CodecError> {
        let json = serde_json::to_vec(result).map_err(CodecError::Json)?;
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&json).map_err(CodecError::Gzip)?;
        let gzip = encoder.finish().map_err(CodecError::Gzip)?;
        Ok(Self {
            gzip,
            json_len: json.len(),
        })
    }

    /// Both bounds: a report of many small, repetitive entries compresses far below the
    /// ConfigMap bound and could still be more JSON than the decoder takes.
    fn fits(&self, bounds: Bounds) -> bool {
        self.gzip.len() <= bounds.encoded && self.json_len <= bounds.decoded
    }
}

fn encode_within(result: &ExecutionResult, bounds: Bounds) -> Result<Vec<u8>, CodecError> {
    let whole = Encoded::of(result)?;
    if whole.fits(bounds) {
        return Ok(whole.gzip);
    }
    encode_capped(result, bounds)
}

/// Finds the largest per-list cap that fits. Cutting every list to the same cap cuts the
/// longest lists first, and a smaller cap never encodes larger, so a binary search applies.
fn encode_capped(result: &ExecutionResult, bounds: Bounds) -> Result<Vec<u8>, CodecError> {
    let floor = Encoded::of(&capped(result, 0))?;
    if !floor.fits(bounds) {
        return Err(CodecError::TooLarge {
            bytes: floor.gzip.len(),
        });
    }
    let (mut fits, mut fitting) = (0, floor.gzip);
    let mut too_large = longest_list(result);
    while too_large - fits > 1 {
        let cap = fits + (too_large - fits) / 2;
        let encoded = Encoded::of(&capped(result, cap))?;
        if encoded.fits(bounds) {
            (fits, fitting) = (cap, encoded.gzip);
        } else {
            too_large = cap;
        }
    }
    tracing::debug!(
        cap = fits,
        bytes = fitting.len(),
        "result report lists cut to fit"
    );
    Ok(fitting)
}

/// Length of the longest cuttable list.
fn longest_list(result: &ExecutionResult) -> usize {
    let drift = result.drift.iter().flat_map(|d| {
        std::iter::once(d.resources.len()).chain(d.resources.iter().map(|r| r.attributes.len()))
    });
    let plan = result.plan.iter().map(|p| p.changes.len());
    drift.chain(plan).max().unwrap_or(0)
}

/// A copy of `result` whose cuttable lists hold at most `cap` entries each, the cut ones
/// counted. The tail goes: drift resources are sorted most severe first. Compliance controls
/// are never cut: the score is computed from all of them.
fn capped(result: &ExecutionResult, cap: usize) -> ExecutionResult {
    let mut result = result.clone();
    if let Some(drift) = result.drift.as_mut() {
        drift.resources_omitted = drift
            .resources_omitted
            .saturating_add(cut(&mut drift.resources, cap));
        for resource in &mut drift.resources {
            resource.attributes_omitted = resource
                .attributes_omitted
                .saturating_add(cut(&mut resource.attributes, cap));
        }
    }
    if let Some(plan) = result.plan.as_mut() {
        plan.changes_omitted = plan
            .changes_omitted
            .saturating_add(cut(&mut plan.changes, cap));
    }
    result
}

/// Truncates `list` to `cap` entries; returns how many went.
fn cut<T>(list: &mut Vec<T>, cap: usize) -> u32 {
    let gone = list.len().saturating_sub(cap);
    list.truncate(cap);
    u32::try_from(gone).unwrap_or(u32::MAX)
}

/// Decodes what [`encode`] produced; refuses input that decompresses beyond
/// [`MAX_DECODED_BYTES`].
pub fn decode(bytes: &[u8]) -> Result<ExecutionResult, CodecError> {
    let mut json = Vec::new();
    GzDecoder::new(bytes)
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut json)
        .map_err(CodecError::Gzip)?;
    if json.len() as u64 > MAX_DECODED_BYTES {
        return Err(CodecError::TooLargeDecoded);
    }
    serde_json::from_slice(&json).map_err(CodecError::Json)
}

/// What the termination message carries: enough to tell what happened without the
/// ConfigMap. Field budgets (escaped bytes) add up to well under [`MAX_SUMMARY_BYTES`].
#[derive(Serialize)]
struct Summary {
    id: String,
    kind: ExecutionKind,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

const ID_BUDGET: usize = 512;
const REASON_BUDGET: usize = 256;
const MESSAGE_BUDGET: usize = 3072;

/// One line of JSON (`{"id","kind","outcome","reason","message"}`) of at most
/// [`MAX_SUMMARY_BYTES`], for the pod's termination message. It holds only what the result
/// holds, which the executor has already redacted.
pub fn summary(result: &ExecutionResult) -> String {
    let error = result.error.as_ref();
    let line = Summary {
        id: bounded(&result.id, ID_BUDGET),
        kind: result.kind,
        outcome: result.outcome,
        reason: error.map(|e| bounded(&e.reason, REASON_BUDGET)),
        message: error.map(|e| bounded(&e.message, MESSAGE_BUDGET)),
    };
    // Strings and enums only: serializing cannot fail, and JSON escapes every newline.
    serde_json::to_string(&line).unwrap_or_default()
}

/// `text`, cut at a character boundary (with `…`) so that its JSON string form, quotes and
/// escapes included, takes at most `budget` bytes.
fn bounded(text: &str, budget: usize) -> String {
    if escaped_len(text) <= budget {
        return text.to_owned();
    }
    let mut used = "\"…\"".len();
    let mut kept = String::new();
    for c in text.chars() {
        let mut buf = [0; 4];
        used += escaped_len(c.encode_utf8(&mut buf)) - 2;
        if used > budget {
            break;
        }
        kept.push(c);
    }
    kept.push('…');
    kept
}

fn escaped_len(text: &str) -> usize {
    serde_json::to_string(text).map_or(usize::MAX, |s| s.len())
}

#[cfg(test)]
#[path = "result_codec_tests.rs"]
mod tests;

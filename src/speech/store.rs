//! Phrase audio kept on disk between worker starts.
//!
//! Rendering every recovery line in every voice is most of a worker's start:
//! hundreds of requests to each networked voice, minutes of speech encoded.
//! A [`PhraseStore`] keeps each rendered line as the Opus packets a call
//! sends, so the next start reads them back instead, and a worker that
//! restarts while a voice is down still has that voice's lines.
//!
//! A line is found by its voice's *identity* (the provider and every setting
//! that shapes its sound: endpoint, model, voice, rate, and the encoder's
//! settings) and its exact text. Change any of them and the line is
//! rendered again; nothing stale is ever played. Files are written whole
//! (to a temporary name, then renamed), so workers sharing a directory never
//! read half a line; a file that does not parse is ignored and replaced.
//!
//! Layout: `{dir}/v1/{voice:016x}/{text:016x}.phrase`, where each name is
//! the FNV-1a hash of the identity or the text; each file also holds both in
//! full, checked on reading.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::cache::CachedPhrase;

/// The first bytes of every phrase file; a new layout takes a new magic.
const MAGIC: &[u8; 8] = b"VGPHRS1\n";
/// The folder of this layout under the store's directory.
const LAYOUT: &str = "v1";
/// Larger files are not phrase files.
const MAX_FILE: u64 = 8 << 20;
/// An Opus packet is at most 1 275 bytes.
const MAX_PACKET: usize = 1275;

/// Where rendered phrases are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhraseStore {
    dir: PathBuf,
    /// Parts of identities written as another name: a voice server whose
    /// address changes from run to run but whose sound does not.
    aliases: Vec<(String, String)>,
}

/// A voice as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVoice {
    identity: String,
    folder: PathBuf,
}

impl StoredVoice {
    /// The identity lines of this voice are filed under.
    pub fn identity(&self) -> &str {
        &self.identity
    }
}

/// Why a stored file was not used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("reading {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not a phrase file of this version ({detail}); it will be rendered again")]
    Format { path: PathBuf, detail: &'static str },
}

impl PhraseStore {
    /// A store in `dir` (created when the first line is saved).
    pub fn at(dir: impl Into<PathBuf>) -> PhraseStore {
        PhraseStore {
            dir: dir.into(),
            aliases: Vec::new(),
        }
    }

    /// File identities that contain `from` under `to` instead.
    pub fn alias(mut self, from: impl Into<String>, to: impl Into<String>) -> PhraseStore {
        self.aliases.push((from.into(), to.into()));
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The voice whose sound `identity` describes.
    pub fn voice(&self, identity: &str) -> StoredVoice {
        let identity = self
            .aliases
            .iter()
            .fold(identity.to_string(), |id, (from, to)| id.replace(from, to));
        let folder = self
            .dir
            .join(LAYOUT)
            .join(format!("{:016x}", fnv1a(identity.as_bytes())));
        StoredVoice { identity, folder }
    }

    fn path(voice: &StoredVoice, text: &str) -> PathBuf {
        voice
            .folder
            .join(format!("{:016x}.phrase", fnv1a(text.as_bytes())))
    }

    /// `text` in `voice`, if it was saved. `Ok(None)`: never saved.
    pub fn load(
        &self,
        voice: &StoredVoice,
        name: &'static str,
        text: &str,
    ) -> Result<Option<CachedPhrase>, StoreError> {
        let path = Self::path(voice, text);
        let bytes = match read_bounded(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        match decode(&bytes, &voice.identity, text, name) {
            Ok(Some(phrase)) => Ok(Some(phrase)),
            // Another text or voice with the same hash: not ours.
            Ok(None) => Ok(None),
            Err(detail) => Err(StoreError::Format { path, detail }),
        }
    }

    /// Keep `phrase`, the rendering of `text` in `voice`.
    pub fn save(&self, voice: &StoredVoice, text: &str, phrase: &CachedPhrase) -> io::Result<()> {
        std::fs::create_dir_all(&voice.folder)?;
        let path = Self::path(voice, text);
        let partial = path.with_extension(format!(
            "partial-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&partial, encode(&voice.identity, text, phrase))?;
        std::fs::rename(&partial, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
    }
}

fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "larger than any phrase file",
        ));
    }
    Ok(bytes)
}

/// 64-bit FNV-1a: stable across builds and platforms (file names outlive
/// the binary that wrote them).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn encode(identity: &str, text: &str, phrase: &CachedPhrase) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + identity.len() + text.len() + phrase.bytes());
    out.extend_from_slice(MAGIC);
    for field in [identity, text] {
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(&phrase.level_dbfs.to_le_bytes());
    out.extend_from_slice(&(phrase.packets.len() as u32).to_le_bytes());
    for packet in phrase.packets.iter() {
        out.extend_from_slice(&(packet.len() as u16).to_le_bytes());
        out.extend_from_slice(packet);
    }
    out
}

/// Reads a file's fields in order, refusing anything out of bounds.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.bytes.len() < n {
            return Err("it ends early");
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn text(&mut self) -> Result<&'a str, &'static str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).map_err(|_| "a name is not UTF-8")
    }
}

/// The phrase in `bytes`; `None` when the file is another voice's or text's.
fn decode(
    bytes: &[u8],
    identity: &str,
    text: &str,
    name: &'static str,
) -> Result<Option<CachedPhrase>, &'static str> {
    let mut r = Reader { bytes };
    if r.take(MAGIC.len())? != MAGIC {
        return Err("unknown header");
    }
    if r.text()? != identity || r.text()? != text {
        return Ok(None);
    }
    let level = f32::from_le_bytes(r.take(4)?.try_into().map_err(|_| "level")?);
    if !level.is_finite() {
        return Err("the level is not a number");
    }
    let count = r.u32()? as usize;
    // Every packet takes at least its two length bytes.
    if count == 0 || count > r.bytes.len() / 2 {
        return Err("the packet count does not fit the file");
    }
    let mut packets = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(r.u16()?);
        if len == 0 || len > MAX_PACKET {
            return Err("a packet is not an Opus packet's size");
        }
        packets.push(Bytes::copy_from_slice(r.take(len)?));
    }
    if !r.bytes.is_empty() {
        return Err("bytes after the last packet");
    }
    Ok(Some(CachedPhrase::from_packets(name, packets, level)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phrase(name: &'static str, sizes: &[usize]) -> CachedPhrase {
        let packets = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| Bytes::from(vec![i as u8; *n]))
            .collect();
        CachedPhrase::from_packets(name, packets, -23.5)
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "voxguard-store-{tag}-{}-{:x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_saved_line_reads_back_as_it_was() {
        let dir = scratch("roundtrip");
        let store = PhraseStore::at(&dir);
        let voice = store.voice("tts.openai https://api.openai.com/v1 gpt-4o-mini-tts alloy");
        let line = phrase("tts.openai", &[3, 80, 1275]);
        assert_eq!(
            store.load(&voice, "tts.openai", "One moment.").unwrap(),
            None
        );
        store.save(&voice, "One moment.", &line).unwrap();
        let back = store.load(&voice, "tts.openai", "One moment.").unwrap();
        assert_eq!(back, Some(line));
        // Another text, another voice: nothing.
        assert_eq!(
            store.load(&voice, "tts.openai", "One moment").unwrap(),
            None
        );
        let other = store.voice("tts.openai https://api.openai.com/v1 gpt-4o-mini-tts echo");
        assert_eq!(
            store.load(&other, "tts.openai", "One moment.").unwrap(),
            None
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_alias_files_a_moving_address_under_one_name() {
        let dir = scratch("alias");
        let first = PhraseStore::at(&dir).alias("127.0.0.1:4100", "speech-simulator");
        let second = PhraseStore::at(&dir).alias("127.0.0.1:4200", "speech-simulator");
        let a = first.voice("tts.openai http://127.0.0.1:4100/v1 m v");
        let b = second.voice("tts.openai http://127.0.0.1:4200/v1 m v");
        assert_eq!(a, b);
        assert_eq!(a.identity(), "tts.openai http://speech-simulator/v1 m v");
        let line = phrase("tts.openai", &[10, 10]);
        first.save(&a, "Hello.", &line).unwrap();
        assert_eq!(second.load(&b, "tts.openai", "Hello.").unwrap(), Some(line));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_file_is_refused_with_its_path_and_never_panics() {
        let dir = scratch("damaged");
        let store = PhraseStore::at(&dir);
        let voice = store.voice("tts.espeak espeak-ng en-us 175");
        let line = phrase("tts.espeak", &[40, 41, 42]);
        store.save(&voice, "Sorry.", &line).unwrap();
        let path = PhraseStore::path(&voice, "Sorry.");
        let whole = std::fs::read(&path).unwrap();
        for cut in 0..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            match store.load(&voice, "tts.espeak", "Sorry.") {
                Err(StoreError::Format { path: p, .. }) => assert_eq!(p, path),
                other => panic!("a file cut at {cut} bytes gave {other:?}"),
            }
        }
        let mut flipped = whole.clone();
        flipped[0] ^= 0xff;
        std::fs::write(&path, &flipped).unwrap();
        let error = store.load(&voice, "tts.espeak", "Sorry.").unwrap_err();
        assert!(error.to_string().contains("rendered again"), "{error}");
        let mut longer = whole;
        longer.push(0);
        std::fs::write(&path, &longer).unwrap();
        assert!(store.load(&voice, "tts.espeak", "Sorry.").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_are_stable_across_builds() {
        // FNV-1a's published test vectors.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}

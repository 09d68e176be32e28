//! libopus opened at run time: the shared library is looked up once per
//! process with `dlopen`, so building voxguard needs no libopus headers,
//! pkg-config or cmake. Only the dozen entry points voxguard calls are
//! declared, with the constants of `opus_defines.h` they need.
//! `VOXGUARD_LIBOPUS=/path/to/libopus.so` picks a library explicitly.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

use super::OpusError;

pub(super) const OPUS_OK: c_int = 0;
pub(super) const OPUS_APPLICATION_VOIP: c_int = 2048;
pub(super) const OPUS_SIGNAL_VOICE: c_int = 3001;

pub(super) const OPUS_SET_BITRATE_REQUEST: c_int = 4002;
pub(super) const OPUS_SET_VBR_REQUEST: c_int = 4006;
pub(super) const OPUS_SET_COMPLEXITY_REQUEST: c_int = 4010;
pub(super) const OPUS_SET_INBAND_FEC_REQUEST: c_int = 4012;
pub(super) const OPUS_SET_PACKET_LOSS_PERC_REQUEST: c_int = 4014;
pub(super) const OPUS_SET_DTX_REQUEST: c_int = 4016;
pub(super) const OPUS_SET_SIGNAL_REQUEST: c_int = 4024;
pub(super) const OPUS_GET_LOOKAHEAD_REQUEST: c_int = 4027;
pub(super) const OPUS_RESET_STATE: c_int = 4028;

/// Where the library is looked for, most specific first. The soname is
/// the one Debian's `libopus0` and every other distribution install.
#[cfg(target_os = "macos")]
const CANDIDATES: &[&str] = &[
    "libopus.0.dylib",
    "/opt/homebrew/lib/libopus.0.dylib",
    "/usr/local/lib/libopus.0.dylib",
];
#[cfg(target_os = "windows")]
const CANDIDATES: &[&str] = &["opus.dll", "libopus-0.dll"];
#[cfg(not(any(target_os = "macos", target_os = "windows")))]
const CANDIDATES: &[&str] = &["libopus.so.0", "libopus.so"];

/// What to tell a user who does not have libopus.
pub(super) const INSTALL_HINT: &str = "install it with `apt-get install libopus0` (Debian/Ubuntu), \
`dnf install opus` (Fedora), `brew install opus` (macOS), or run scripts/install-system-deps.sh";

type EncoderCreate = unsafe extern "C" fn(i32, c_int, c_int, *mut c_int) -> *mut c_void;
type EncoderDestroy = unsafe extern "C" fn(*mut c_void);
type Encode = unsafe extern "C" fn(*mut c_void, *const i16, c_int, *mut u8, i32) -> i32;
type EncoderCtl = unsafe extern "C" fn(*mut c_void, c_int, ...) -> c_int;
type DecoderCreate = unsafe extern "C" fn(i32, c_int, *mut c_int) -> *mut c_void;
type DecoderDestroy = unsafe extern "C" fn(*mut c_void);
type Decode = unsafe extern "C" fn(*mut c_void, *const u8, i32, *mut i16, c_int, c_int) -> c_int;
type DecoderCtl = unsafe extern "C" fn(*mut c_void, c_int, ...) -> c_int;
type PacketSamples = unsafe extern "C" fn(*const u8, i32, i32) -> c_int;
type StrError = unsafe extern "C" fn(c_int) -> *const c_char;
type VersionString = unsafe extern "C" fn() -> *const c_char;

/// The entry points, copied out of the library, which stays loaded for the
/// life of the process (it is never closed, so the pointers stay valid).
pub(super) struct Opus {
    pub encoder_create: EncoderCreate,
    pub encoder_destroy: EncoderDestroy,
    pub encode: Encode,
    pub encoder_ctl: EncoderCtl,
    pub decoder_create: DecoderCreate,
    pub decoder_destroy: DecoderDestroy,
    pub decode: Decode,
    pub decoder_ctl: DecoderCtl,
    pub packet_get_nb_samples: PacketSamples,
    strerror: StrError,
    version: VersionString,
}

impl Opus {
    /// libopus's own words for an error code.
    pub fn describe(&self, code: c_int) -> String {
        // SAFETY: opus_strerror returns a static NUL-terminated string for
        // any code, known or not.
        unsafe { CStr::from_ptr((self.strerror)(code)) }
            .to_string_lossy()
            .into_owned()
    }

    pub fn version(&self) -> String {
        // SAFETY: opus_get_version_string returns a static C string.
        unsafe { CStr::from_ptr((self.version)()) }
            .to_string_lossy()
            .into_owned()
    }
}

static OPUS: OnceLock<Result<Opus, OpusError>> = OnceLock::new();

/// The process's libopus, loaded on first use.
pub(super) fn opus() -> Result<&'static Opus, OpusError> {
    OPUS.get_or_init(load).as_ref().map_err(Clone::clone)
}

/// Names a libopus to load instead of looking in the usual places.
pub(super) const PATH_VARIABLE: &str = "VOXGUARD_LIBOPUS";

fn load() -> Result<Opus, OpusError> {
    let chosen = std::env::var(PATH_VARIABLE).ok();
    let candidates: Vec<&str> = match &chosen {
        Some(path) => vec![path.as_str()],
        None => CANDIDATES.to_vec(),
    };
    let mut reasons = Vec::new();
    for name in &candidates {
        // SAFETY: loading libopus runs no initialisers with preconditions.
        match unsafe { libloading::Library::new(*name) } {
            Ok(library) => {
                // Never unloaded: the copied function pointers must outlive
                // every encoder and decoder.
                let library: &'static libloading::Library = Box::leak(Box::new(library));
                return resolve(library, name);
            }
            Err(e) => reasons.push(format!("{name}: {e}")),
        }
    }
    Err(OpusError::LibraryMissing {
        tried: reasons.join("; "),
    })
}

fn resolve(library: &'static libloading::Library, name: &str) -> Result<Opus, OpusError> {
    macro_rules! symbol {
        ($symbol:literal) => {
            // SAFETY: the type written for each symbol is the signature
            // opus.h declares for it.
            *unsafe { library.get(concat!($symbol, "\0").as_bytes()) }.map_err(|e| {
                OpusError::LibraryMissing {
                    tried: format!("{name} has no {}: {e}", $symbol),
                }
            })?
        };
    }
    Ok(Opus {
        encoder_create: symbol!("opus_encoder_create"),
        encoder_destroy: symbol!("opus_encoder_destroy"),
        encode: symbol!("opus_encode"),
        encoder_ctl: symbol!("opus_encoder_ctl"),
        decoder_create: symbol!("opus_decoder_create"),
        decoder_destroy: symbol!("opus_decoder_destroy"),
        decode: symbol!("opus_decode"),
        decoder_ctl: symbol!("opus_decoder_ctl"),
        packet_get_nb_samples: symbol!("opus_packet_get_nb_samples"),
        strerror: symbol!("opus_strerror"),
        version: symbol!("opus_get_version_string"),
    })
}

//! Without libopus, the first encoder or decoder is a typed error that
//! names the package to install (one test per process: the library is
//! looked up once).

use voxguard::media::opus::{Decoder, Encoder, EncoderConfig, OpusError};

#[test]
fn a_machine_without_libopus_gets_an_error_naming_the_package_to_install() {
    // SAFETY: the only test in this binary; no other thread reads the
    // environment.
    unsafe { std::env::set_var("VOXGUARD_LIBOPUS", "/nonexistent/libopus.so.0") };
    let err = Encoder::new(EncoderConfig::default())
        .err()
        .expect("no libopus there");
    assert!(matches!(err, OpusError::LibraryMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("apt-get install libopus0"), "{message}");
    assert!(message.contains("/nonexistent/libopus.so.0"), "{message}");
    assert_eq!(Decoder::new().err(), Some(err));
}

//! The LUKS1 header and the volume it describes: the input is the start of
//! a volume (zero-filled past its end, as a short file reads). Whatever
//! parses must serialise into a header that parses again; a volume whose
//! key slots ask for few PBKDF2 rounds is also unlocked with a wrong
//! passphrase, which must fail cleanly.

use rbdimg::formats::luks::Volume;
use rbdimg::formats::luks::header::{HEADER_LEN, Header};

use crate::padded;

/// True when the header parsed.
pub fn run(data: &[u8]) -> bool {
    let read = |buf: &mut [u8], offset: u64| padded::read(data, buf, offset);
    let mut head = data.to_vec();
    head.resize(data.len().max(HEADER_LEN), 0);
    let Ok(header) = Header::parse(&head) else {
        return false;
    };
    let again = Header::parse(&header.to_bytes()).expect("a serialised header parses");
    assert_eq!(again, header);
    if let Ok(volume) = Volume::open(&read, None) {
        let _ = volume.info();
    }
    // Unlocking costs the slots' PBKDF2 rounds: only cheap headers.
    let cheap = header.mk_digest_iter <= 2000
        && header
            .slots
            .iter()
            .all(|s| !s.active || s.iterations <= 2000);
    if cheap {
        let _ = Volume::open(&read, Some(b"not the passphrase"));
    }
    true
}

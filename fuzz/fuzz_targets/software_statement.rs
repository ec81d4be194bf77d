//! The software statement decoder: any text is a statement or the one
//! "not a JWT" error, which never depends on (nor shows) the text.
#![no_main]

use cmu_exporter::credentials::{SoftwareStatement, StatementError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    if let Err(e) = SoftwareStatement::parse(text, "fuzz") {
        let malformed = StatementError::Malformed {
            origin: "fuzz".into(),
        };
        assert_eq!(e.to_string(), malformed.to_string());
    }
});

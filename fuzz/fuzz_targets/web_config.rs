//! The `--web.config.file`: any text is a web configuration or an error.
#![no_main]

use cmu_exporter::incoming::{ConnectionLimits, WebConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Certificate and key files are read: keep the fuzzer off device files.
    if ["/dev", "/proc", "/sys"].iter().any(|d| text.contains(d)) {
        return;
    }
    let path = std::path::Path::new("/nonexistent/web.yml");
    let _ = WebConfig::parse(text, path, ConnectionLimits::default());
});

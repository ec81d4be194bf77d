//! The configuration file: any text is a configuration or a list of problems.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = cmu_exporter::config::Config::from_yaml(text, "fuzz") {
            let _ = config.explain();
        }
    }
});

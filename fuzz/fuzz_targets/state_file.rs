//! The credentials state file: any bytes are a state or `None`, and a
//! state's `Debug` print does not depend on its secrets (it shows none).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(state) = cmu_exporter::credentials::parse_state(data) {
        let mut other = state.clone();
        other.client.client_secret = "another secret".to_owned().into();
        if let Some(token) = &mut other.token {
            token.value = "another token".to_owned().into();
        }
        assert_eq!(
            format!("{state:?}"),
            format!("{other:?}"),
            "a secret shows in a Debug print"
        );
    }
});

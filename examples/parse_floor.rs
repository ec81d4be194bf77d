//! The physical floor of ingesting a CMU report: serde_json parsing the same
//! bytes into `IgnoredAny`, as a whole process (read the file, parse, exit).
//! `benches/run` times it next to `cmu-exporter render` on the same file.

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: parse_floor REPORT.json");
    let bytes = std::fs::read(&path).expect("readable file");
    let _: serde::de::IgnoredAny = serde_json::from_slice(&bytes).expect("valid JSON");
}

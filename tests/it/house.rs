//! The shape of the house, read from the sources: no import circles
//! between rooms, and the places that still tell CMU from ESM by name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `.rs` file of `src/`, by its path below `src/` (`export/build.rs`),
/// with its text, tests left out (`#[cfg(test)]` to the end of the file).
fn rooms() -> BTreeMap<String, String> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            let name = path.strip_prefix(&src).unwrap().display().to_string();
            (name, code)
        })
        .collect()
}

/// The room a path of modules names: the file itself if it exists
/// (`export/samples.rs`), or the folder's `mod.rs`, or the longest prefix
/// that is a room.
fn room_of(modules: &[&str], rooms: &BTreeMap<String, String>) -> Option<String> {
    (1..=modules.len()).rev().find_map(|n| {
        let stem = modules[..n].join("/");
        [format!("{stem}.rs"), format!("{stem}/mod.rs")]
            .into_iter()
            .find(|candidate| rooms.contains_key(candidate))
    })
}

/// The module path of a room: `export/build.rs` -> `export::build`.
fn modules_of(room: &str) -> Vec<String> {
    let stem = room.trim_end_matches(".rs").trim_end_matches("/mod");
    stem.split('/').map(str::to_owned).collect()
}

/// Which rooms each room imports, from `crate::…` and `super::…` paths.
/// A folder's `mod.rs` declares and re-exports its children: those edges
/// are not imports.
fn imports(rooms: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for (room, code) in rooms {
        let own = modules_of(room);
        let is_mod = room.ends_with("mod.rs") || room == "lib.rs" || room == "main.rs";
        let parent: Vec<String> = if is_mod {
            own.clone()
        } else {
            own[..own.len() - 1].to_vec()
        };
        let mut targets = BTreeSet::new();
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for (prefix, base) in [("crate::", Vec::new()), ("super::", parent.clone())] {
            for (at, _) in code.match_indices(prefix) {
                if prefix == "super::" && code[..at].ends_with("::") {
                    continue;
                }
                let rest = &code[at + prefix.len()..];
                let path: Vec<&str> = rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .collect();
                let mut modules: Vec<&str> = base.iter().map(String::as_str).collect();
                if prefix == "super::" && is_mod {
                    modules.pop();
                }
                modules.extend(path);
                if let Some(target) = room_of(&modules, rooms) {
                    let declares = is_mod && modules_of(&target).starts_with(&own);
                    if target != *room && !declares {
                        targets.insert(target);
                    }
                }
            }
        }
        graph.insert(room.clone(), targets);
    }
    graph
}

/// A circle through `from`, if any: the rooms on the way back to it.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((room, path)) = stack.pop() {
        for next in graph.get(&room).into_iter().flatten() {
            if next == from {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_room_imports_a_room_that_imports_it_back() {
    let rooms = rooms();
    let graph = imports(&rooms);
    assert!(
        graph["export/build.rs"].contains("export/samples.rs"),
        "the reader sees imports: {:?}",
        graph["export/build.rs"]
    );
    assert!(
        graph["poller.rs"].contains("wolap.rs"),
        "{:?}",
        graph["poller.rs"]
    );
    let circles: Vec<String> = graph
        .keys()
        .filter_map(|room| circle(&graph, room))
        .map(|path| path.join(" -> "))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// What differs between CMU and ESM is decided in the API's profile
/// (`report/api.rs`) and its catalog (the vocabulary in `report/catalog.rs`,
/// the documented trees in `report/tree.rs`); the simulator, which plays
/// both servers, may match on the API too. Anywhere else, a third API
/// would mean an edit.
#[test]
fn only_the_api_profile_and_the_catalog_match_on_the_api() {
    let allowed = |room: &str| {
        ["report/api.rs", "report/catalog.rs", "report/tree.rs"].contains(&room)
            || room.starts_with("simulator/")
    };
    let matches: Vec<String> = rooms()
        .iter()
        .filter(|(room, _)| !allowed(room))
        .flat_map(|(room, code)| {
            code.lines()
                .enumerate()
                .filter(|(_, line)| {
                    line.contains("ReportApi::Cmu") || line.contains("ReportApi::Esm")
                })
                .map(move |(n, line)| format!("{room}:{}: {}", n + 1, line.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        matches.is_empty(),
        "API matches outside its profile:\n{}",
        matches.join("\n")
    );
}

/// A bare clone runs and documents nothing beside itself: no tracked file
/// names a path that leaves the repository (a folder beside the clone,
/// say), resolved from the file's own folder as a relative path is, or a
/// parent folder joined to a path in code (a join with `".."` in Python),
/// counted from the root. A deliberately bad
/// path in a test's input (a traversal the code must refuse) is marked
/// `outside-ok` on its line.
/// The files git tracks below `root`, by their paths from it.
fn tracked_files(root: &Path) -> Vec<String> {
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(listed.status.success(), "git ls-files failed");
    listed
        .stdout
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

#[test]
fn no_tracked_file_names_a_path_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut outside = Vec::new();
    for name in tracked_files(root) {
        let Ok(text) = std::fs::read_to_string(root.join(&name)) else {
            continue; // binary
        };
        let folder_depth = Path::new(&name).components().count() - 1;
        for (number, line) in text.lines().enumerate() {
            if line.contains("outside-ok") {
                continue;
            }
            // A parent joined in code counts from the repository's root.
            let joined = ["\"..\", \"", "'..', '"] // outside-ok
                .iter()
                .any(|join| line.contains(join));
            if joined {
                outside.push(format!("{name}:{}: a parent folder joined", number + 1));
            }
            let mut rest = line;
            while let Some(at) = rest.find("../") {
                let token: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || "._-/".contains(*c))
                    .collect();
                rest = &rest[at + 3..];
                // Preceded by more dots or a word: part of something else.
                let ups = token.matches("../").count();
                let named = token.trim_start_matches("../");
                if ups > folder_depth && !named.is_empty() {
                    outside.push(format!("{name}:{}: {token}", number + 1));
                }
            }
        }
    }
    assert!(
        outside.is_empty(),
        "paths outside the repository (a bare clone has none of them):\n{}",
        outside.join("\n")
    );
}

/// The tracked files of the work tree, copied into an empty folder (what a
/// clone holds, nothing beside it), run the benchmark script on its smoke
/// sizes: nothing it runs reaches outside the repository, and nothing it
/// needs is left untracked. It uses the binaries `cargo test` built
/// (`BENCH_PREBUILT`): that the crate builds from its tracked files alone is
/// what scripts/check-image proves.
#[test]
fn the_benchmark_script_runs_in_a_clone_with_nothing_beside_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let empty = tempfile::tempdir().unwrap();
    let clone = empty.path().join("cmu-exporter");
    for name in tracked_files(root) {
        let from = root.join(&name);
        if !from.is_file() {
            continue; // deleted in the work tree, not yet in the index
        }
        let to = clone.join(&name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let ran = std::process::Command::new(clone.join("benches/run"))
        .arg("--smoke")
        .current_dir(&clone)
        .env("CARGO_TARGET_DIR", &target)
        .env("BENCH_PREBUILT", "1")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        ran.status.success(),
        "benches/run --smoke failed in a clone with nothing beside it:\n{said}"
    );
    assert!(said.contains("figure"), "it printed its table:\n{said}");
}

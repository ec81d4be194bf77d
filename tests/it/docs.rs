//! The manual (README.md and docs/) against the repository and the
//! exporter: its pages, their contents and links; every configuration it
//! shows, passed through the tool that reads it; the metric reference,
//! against what the exporter serves and pushes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The README holds what it is, the two commands, the quick start and
/// links; the rest is in docs/.
const README_MOST_LINES: usize = 400;

/// Every Markdown page of the manual: README.md and docs/*.md.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![Path::new(ROOT).join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn shown(page: &Path) -> String {
    page.strip_prefix(ROOT)
        .unwrap_or(page)
        .display()
        .to_string()
}

/// The lines of `text` outside fenced code blocks, with their index.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push((i, line));
        }
    }
    out
}

/// The anchor GitHub gives a heading: lower case, punctuation but `-` and
/// `_` dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The headings of a page: (level, text).
fn headings(text: &str) -> Vec<(usize, String)> {
    prose(text)
        .into_iter()
        .filter_map(|(_, line)| {
            let level = line.chars().take_while(|&c| c == '#').count();
            let rest = line.get(level..)?;
            (level > 0 && rest.starts_with(' ')).then(|| (level, rest.trim().to_owned()))
        })
        .collect()
}

/// The contents list a docs page must carry: every heading of level 2 and
/// 3 after the list itself.
fn contents(text: &str) -> String {
    headings(text)
        .into_iter()
        .filter(|(level, text)| (2..=3).contains(level) && text != "Contents")
        .map(|(level, text)| format!("{}- [{text}](#{})\n", "  ".repeat(level - 2), anchor(&text)))
        .collect()
}

/// The list under `## Contents`, as written.
fn written_contents(text: &str) -> Option<String> {
    let start = text.find("\n## Contents\n\n")? + "\n## Contents\n\n".len();
    let end = text[start..]
        .find("\n\n")
        .map_or(text.len(), |e| start + e + 1);
    Some(text[start..end].to_owned())
}

/// The targets of the Markdown links of a page's prose.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (_, line) in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                out.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    out
}

/// `<!-- include FILE -->` and the fenced block after it: (file, the
/// block's lines with the fence's indentation removed).
fn includes(page: &Path, text: &str) -> Vec<(PathBuf, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(file) = line
            .trim()
            .strip_prefix("<!-- include ")
            .and_then(|r| r.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.get(i + 1).copied().unwrap_or_default();
        assert!(
            fence.trim_start().starts_with("```"),
            "{}:{}: `<!-- include {file} -->` must be followed by a fenced block",
            shown(page),
            i + 1
        );
        let indent = fence.len() - fence.trim_start().len();
        let block: String = lines[i + 2..]
            .iter()
            .take_while(|l| !l.trim_start().starts_with("```"))
            .map(|l| format!("{}\n", l.get(indent..).unwrap_or_default()))
            .collect();
        out.push((page.parent().unwrap().join(file), block));
    }
    out
}

#[test]
fn the_readme_is_short_and_each_page_has_its_contents_links_that_resolve_and_its_examples_verbatim()
{
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= README_MOST_LINES,
        "README.md has {lines} lines, more than {README_MOST_LINES}: move the detail into a page of docs/"
    );
    let mut problems = Vec::new();
    let mut included = BTreeSet::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let is_doc = page.parent().unwrap().ends_with("docs");
        // The runbook is one section per alert, reached by the alerts' links.
        if is_doc && !page.ends_with("runbook.md") {
            let wanted = contents(&text);
            match written_contents(&text) {
                Some(written) if written == wanted => {}
                Some(written) => problems.push(format!(
                    "{}: its `## Contents` list is not its headings'; it should read:\n{wanted}(it reads:\n{written})",
                    shown(&page)
                )),
                None => problems.push(format!(
                    "{}: no `## Contents` list after its title; it should read:\n{wanted}",
                    shown(&page)
                )),
            }
        }
        for target in links(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
            {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let file = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !file.exists() {
                problems.push(format!(
                    "{}: the link `{target}` names a file that does not exist",
                    shown(&page)
                ));
                continue;
            }
            if !fragment.is_empty() {
                let there = std::fs::read_to_string(&file).unwrap_or_default();
                if !headings(&there).iter().any(|(_, h)| anchor(h) == fragment) {
                    problems.push(format!(
                        "{}: the link `{target}` names no heading of {}",
                        shown(&page),
                        file.display()
                    ));
                }
            }
        }
        for (file, block) in includes(&page, &text) {
            let wanted = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: include {}: {e}", shown(&page), file.display()));
            if block != wanted {
                problems.push(format!(
                    "{}: the block after `<!-- include {} -->` differs from the file: run scripts/docs-sync",
                    shown(&page),
                    file.display()
                ));
            }
            included.insert(file.canonicalize().unwrap());
        }
    }
    for example in examples() {
        if !included.contains(&example.canonicalize().unwrap()) {
            problems.push(format!(
                "{}: no page includes it (`<!-- include ... -->`)",
                shown(&example)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every file of docs/examples/.
fn examples() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(ROOT).join("docs/examples"), &mut out);
    out.sort();
    out
}

/// The tool that reads each example.
#[derive(Debug, Clone, Copy)]
enum Reader {
    /// `cmu-exporter check-config`.
    Exporter,
    /// `cmu-exporter check-config --web.config.file`.
    WebConfig,
    /// `promtool check config`.
    Prometheus,
    /// `amtool check-config`.
    Alertmanager,
}

fn reader(example: &Path) -> Reader {
    let name = example.file_name().unwrap().to_str().unwrap();
    match name {
        "prometheus.yml" => Reader::Prometheus,
        "alertmanager.yml" => Reader::Alertmanager,
        "web-config.yml" => Reader::WebConfig,
        _ if name.ends_with(".yaml") => Reader::Exporter,
        _ => panic!(
            "{}: no tool known to check it: name it prometheus.yml, alertmanager.yml, web-config.yml or *.yaml (the exporter's)",
            shown(example)
        ),
    }
}

/// An exporter configuration of the docs, made checkable here: the files
/// it names under /etc/cmu-exporter/ are made in `dir` (a statement of the
/// simulator's, a password), the state directory is moved into `dir`.
fn localised(example: &str, dir: &Path, statement: &str) -> String {
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let mut text = example.replace(
        "/var/lib/cmu-exporter",
        &dir.join("state").display().to_string(),
    );
    let mut rest = example;
    while let Some(at) = rest.find("/etc/cmu-exporter/") {
        rest = &rest[at + "/etc/cmu-exporter/".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect();
        let content = if name.ends_with(".jwt") {
            statement
        } else {
            "not-a-real-secret\n"
        };
        std::fs::write(etc.join(&name), content).unwrap();
    }
    text = text.replace("/etc/cmu-exporter/", &format!("{}/", etc.display()));
    text
}

fn tool(program: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test installs it): {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Checks one example with its tool: Ok, or what the tool said.
fn check_example(example: &Path, statement: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example).unwrap();
    let (ok, said) = match reader(example) {
        Reader::Exporter => {
            let config = dir.path().join("config.yaml");
            std::fs::write(&config, localised(&text, dir.path(), statement)).unwrap();
            let ran = run_binary(&["check-config", "--config.file", config.to_str().unwrap()]);
            (ran.code == Some(0), format!("{}{}", ran.stdout, ran.stderr))
        }
        Reader::WebConfig => {
            let pki = make_pki("docs");
            for (name, pem) in [
                ("server.crt", &pki.server_cert),
                ("server.key", &pki.server_key),
                ("clients-ca.crt", &pki.ca),
            ] {
                std::fs::write(dir.path().join(name), pem).unwrap();
            }
            let web = dir.path().join("web-config.yml");
            std::fs::write(&web, &text).unwrap();
            let config = dir.path().join("config.yaml");
            let minimal = "adobe:\n  software_statement_file: /etc/cmu-exporter/statement.jwt\nstate_dir: /var/lib/cmu-exporter\nreports:\n  - name: daily\n    path: tenant/year/month/day\n";
            std::fs::write(&config, localised(minimal, dir.path(), statement)).unwrap();
            let ran = run_binary(&[
                "check-config",
                "--config.file",
                config.to_str().unwrap(),
                "--web.config.file",
                web.to_str().unwrap(),
            ]);
            (ran.code == Some(0), format!("{}{}", ran.stdout, ran.stderr))
        }
        Reader::Prometheus => {
            // Its rule file, as the quick start says, beside it.
            std::fs::copy(
                Path::new(ROOT).join("deploy/prometheus/cmu-exporter.rules.yml"),
                dir.path().join("cmu-exporter.rules.yml"),
            )
            .unwrap();
            let file = dir.path().join("prometheus.yml");
            std::fs::write(&file, &text).unwrap();
            tool(
                promtool().to_str().unwrap(),
                &["check", "config", file.to_str().unwrap()],
            )
        }
        Reader::Alertmanager => {
            let file = dir.path().join("alertmanager.yml");
            std::fs::write(&file, &text).unwrap();
            tool("amtool", &["check-config", file.to_str().unwrap()])
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} ({:?}) is refused:\n{said}",
            shown(example),
            reader(example)
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configuration_the_docs_show_passes_the_tool_that_reads_it() {
    let sim = simulator().await;
    let statement = sim.software_statement();
    let examples = examples();
    assert!(examples.len() >= 8, "{examples:?}");
    let refused: Vec<String> = examples
        .iter()
        .filter_map(|e| check_example(e, statement).err())
        .collect();
    assert!(refused.is_empty(), "{}", refused.join("\n\n"));

    // Each check can fail: a misspelt key in each kind of example is refused.
    for (example, good, bad) in [
        (
            "quickstart/config.yaml",
            "family: cmu_active_sessions",
            "family: cmu_active_session",
        ),
        (
            "quickstart/prometheus.yml",
            "scrape_interval: 60s",
            "scrape_intervl: 60s",
        ),
        (
            "quickstart/alertmanager.yml",
            "group_wait: 1m",
            "group_wiat: 1m",
        ),
        ("web-config.yml", "client_auth_type:", "client_auth_typ:"),
    ] {
        let original = Path::new(ROOT).join("docs/examples").join(example);
        let text = std::fs::read_to_string(&original).unwrap();
        assert!(text.contains(good), "{example} holds `{good}`");
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join(original.file_name().unwrap());
        std::fs::write(&broken, text.replacen(good, bad, 1)).unwrap();
        assert!(
            check_example(&broken, statement).is_err(),
            "{example} with `{bad}` is refused by its tool"
        );
    }
}

// The metric reference against the exporter. The faulty store, which reads
// back what is pushed, is test machinery.
#[cfg(feature = "testkit")]
mod metric_reference {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;
    use std::time::Duration;

    use super::{ROOT, prose};
    use crate::common::*;

    /// The families a table's first column names in docs/metrics.md: every
    /// backquoted name, a histogram's `_bucket`/`_count` read as its family.
    fn documented_families() -> BTreeSet<String> {
        let text = std::fs::read_to_string(Path::new(ROOT).join("docs/metrics.md")).unwrap();
        let mut out = BTreeSet::new();
        for (_, line) in prose(&text) {
            let Some(cell) = line.strip_prefix("| ").and_then(|l| l.split(" | ").next()) else {
                continue;
            };
            for (i, part) in cell.split('`').enumerate() {
                if i % 2 == 0 {
                    continue;
                }
                let name = part.split('{').next().unwrap();
                if name.contains('*')
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    continue;
                }
                let family = name
                    .strip_suffix("_bucket")
                    .or_else(|| {
                        name.strip_suffix("_count")
                            .filter(|_| cell.contains("_bucket"))
                    })
                    .unwrap_or(name);
                out.insert(family.to_owned());
            }
        }
        out
    }

    /// Reports with every documented family of both APIs: the CMU metrics,
    /// durations, both level reports; ESM's authentication, authorization,
    /// clientless, events, uniques, `eap` and `decision-type` paths.
    const EVERY_FAMILY: &str = "  - name: minute
    path: tenant/year/month/day/hour/minute/mvpd
    interval: 2s
  - name: concurrency
    path: year/month/day/concurrency-level/tenant
    interval: 5s
  - name: activity
    path: year/month/day/activity-level/tenant
    interval: 5s
  - name: esm_minute
    api: esm
    path: media-company/year/month/day/hour/minute/proxy/mvpd
    interval: 2s
  - name: esm_clientless
    api: esm
    path: media-company/year/month/day/hour/proxy/mvpd/requestor-id/cdt/channel/platform-version
    interval: 5s
  - name: esm_events
    api: esm
    path: media-company/year/month/day/hour/event/requestor-id/proxy/mvpd/reason
    interval: 5s
  - name: esm_dc
    api: esm
    path: media-company/year/month/day/dc
    interval: 5s
  - name: esm_eap
    api: esm
    path: media-company/year/month/day/hour/proxy/mvpd/requestor-id/eap
    interval: 5s
  - name: esm_decisions
    api: esm
    path: media-company/year/month/day/requestor-id/proxy/mvpd/platform/customer-app/channel/decision-type
    interval: 5s
thresholds:
  - family: cmu_active_sessions
    warning: 100
stream_limits:
  - limit: 3
";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_metric_reference_lists_every_family_served_or_pushed_and_no_other() {
        let documented = documented_families();
        assert!(documented.len() > 60, "{documented:?}");
        let (sim, _dir, config) = simulator_and_config(EVERY_FAMILY).await;
        let store = cmu_exporter::faulty_store::start().await.unwrap();
        add_remote_write(&config, &store.url, "self_metrics_interval: 1s");
        let exporter = spawn_binary(&config, &[], &[]);
        let served_and_pushed = || async {
            let (_, text) = get_text(&format!("{}/metrics", exporter.base)).await;
            let mut families: BTreeMap<String, &str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .filter_map(|l| l.split_once(' '))
                .map(|(name, _)| (name.to_owned(), "served"))
                .collect();
            for series in store.state.lock().unwrap().samples().keys() {
                let name = &series["__name__"];
                let family = ["_bucket", "_count", "_sum"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| families.contains_key(*f)))
                    .unwrap_or(name);
                families.entry(family.to_owned()).or_insert("pushed");
            }
            families
        };
        // Some families come with an event (the first complete bucket after a
        // poll, the first push): wait until every documented one came.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let families = loop {
            let families = served_and_pushed().await;
            if documented.iter().all(|f| families.contains_key(f))
                || tokio::time::Instant::now() > deadline
            {
                break families;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let missing: Vec<&String> = documented
            .iter()
            .filter(|f| !families.contains_key(*f))
            .collect();
        assert!(
            missing.is_empty(),
            "families docs/metrics.md lists that were neither served nor pushed in 90 s: {missing:?}"
        );
        // The quick start's count (step 3) counts the CMU and ESM series, the
        // self-metrics left out: its command, run on this page.
        let (_, page) = get_text(&format!("{}/metrics", exporter.base)).await;
        let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
        let command = readme
            .split('`')
            .find(|c| c.starts_with("curl -s localhost:9063/metrics |") && c.contains("grep -vc"))
            .expect("the quick start's step 3 counts series with curl and grep -vc");
        let saved = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(saved.path(), &page).unwrap();
        let command = command.replacen(
            "curl -s localhost:9063/metrics",
            &format!("cat {}", saved.path().display()),
            1,
        );
        let counted = std::process::Command::new("bash")
            .args(["-c", &command])
            .output()
            .unwrap();
        let counted: usize = String::from_utf8_lossy(&counted.stdout)
            .trim()
            .parse()
            .unwrap();
        let series = parse_exposition(&page)
            .iter()
            .filter(|s| {
                (s.name.starts_with("cmu_") || s.name.starts_with("esm_"))
                    && !s.name.starts_with("cmu_exporter_")
            })
            .count();
        assert!(series > 100, "{series}");
        assert_eq!(counted, series, "the quick start's `{command}`");
        let undocumented: Vec<String> = families
            .iter()
            .filter(|(f, _)| !documented.contains(*f))
            .map(|(f, how)| format!("{f} ({how})"))
            .collect();
        assert!(
            undocumented.is_empty(),
            "families served or pushed that docs/metrics.md does not list: {undocumented:?}"
        );
        drop(sim);
    }
}

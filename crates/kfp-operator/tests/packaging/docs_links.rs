//! The documentation's relative links resolve: every `[text](target)` in the repository's Markdown (README,
//! CHANGELOG, `docs/`, the examples', compilers' and chart's READMEs) that is not a URL names a file or folder that
//! exists, and a `#fragment` into a Markdown file names one of its headings (GitHub's anchors). The index
//! `docs/README.md` links every guide under `docs/`.
//!
//! Links inside code blocks and code spans are not links and are skipped. Pure file reading: no control plane.
//!
//! The repository stands alone: no tracked file names a path outside it (the sibling `shared` folder some
//! machines have) or a folder of one particular machine, so a clone anywhere passes its own suite. The only
//! exception is `.ci/run`, which points `KFP_GO_COMPAT_DIR` at the Go operator's files (`docs/development.md`).

// Test code: failing loudly with the reason is the point.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Markdown files under `dir`, recursively, skipping build output and dependencies.
fn markdown_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if !matches!(name.as_str(), "target" | "node_modules" | ".git" | ".venv") {
                markdown_under(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The documents whose links are checked.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    for dir in ["docs", "examples", "compilers", "charts"] {
        markdown_under(&root.join(dir), &mut files);
    }
    files.retain(|f| f.is_file());
    files.sort();
    files
}

/// The text outside fenced code blocks, line by line (`None` for lines inside a fence).
fn prose_lines(markdown: &str) -> Vec<Option<&str>> {
    let mut fence: Option<&str> = None;
    markdown
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
            match (fence, marker) {
                (None, Some(m)) => {
                    fence = Some(m);
                    None
                }
                (Some(open), Some(m)) if open == m => {
                    fence = None;
                    None
                }
                (Some(_), _) => None,
                (None, None) => Some(line),
            }
        })
        .collect()
}

/// `line` with code spans (any number of backticks) blanked out.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|c| **c == '`').count();
        // Find the closing run of the same length.
        let mut j = i + run;
        let mut closed = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let other = chars[j..].iter().take_while(|c| **c == '`').count();
                if other == run {
                    closed = Some(j + other);
                    break;
                }
                j += other;
            } else {
                j += 1;
            }
        }
        match closed {
            Some(end) => {
                out.push(' ');
                i = end;
            }
            None => {
                // An unmatched backtick run is literal text.
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// The targets of inline links and images on one line of prose.
fn link_targets(line: &str) -> Vec<String> {
    let text = without_code_spans(line);
    let mut targets = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else {
            break;
        };
        let raw = after[..end].trim();
        // `[text](target "title")`
        let target = raw.split_whitespace().next().unwrap_or_default();
        let target = target.trim_start_matches('<').trim_end_matches('>');
        if !target.is_empty() {
            targets.push(target.to_string());
        }
        rest = &after[end..];
    }
    targets
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    let text = without_code_spans_keep(heading);
    text.trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// A heading's text with the backticks of its code spans removed (their content stays, as GitHub renders it).
fn without_code_spans_keep(heading: &str) -> String {
    heading.replace('`', "")
}

/// Every anchor a Markdown file offers: one per heading, `-1`, `-2`, ... for repeated ones.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose_lines(markdown).into_iter().flatten() {
        let trimmed = line.trim_start();
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if level == 0 || level > 6 || !trimmed[level..].starts_with(' ') {
            continue;
        }
        let base = slug(trimmed[level..].trim().trim_end_matches('#'));
        let count = seen.entry(base.clone()).or_insert(0);
        out.insert(if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    out
}

fn is_external(target: &str) -> bool {
    target.contains("://") || target.starts_with("mailto:")
}

/// Every broken relative link of `file`, as `file:line: target: why`.
fn broken_links(root: &Path, file: &Path) -> Vec<String> {
    let markdown = std::fs::read_to_string(file).unwrap();
    let display = file.strip_prefix(root).unwrap_or(file).display().to_string();
    let mut broken = Vec::new();
    for (number, line) in prose_lines(&markdown).into_iter().enumerate() {
        let Some(line) = line else {
            continue;
        };
        for target in link_targets(line) {
            if is_external(&target) {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else {
                file.parent().unwrap().join(path)
            };
            let at = format!("{display}:{}: {target}", number + 1);
            if !resolved.exists() {
                broken.push(format!("{at}: {} does not exist", resolved.display()));
                continue;
            }
            if let Some(fragment) = fragment
                && resolved.extension().is_some_and(|e| e == "md")
            {
                let offered = anchors(&std::fs::read_to_string(&resolved).unwrap());
                if !offered.contains(fragment) {
                    broken.push(format!(
                        "{at}: no heading with the anchor #{fragment} (it has: {})",
                        offered.into_iter().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = repo_root();
    let files = documents(&root);
    assert!(
        files.iter().any(|f| f.ends_with("docs/getting-started.md")),
        "the documents to check were not found under {}",
        root.display()
    );
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(&root, f)).collect();
    assert!(
        broken.is_empty(),
        "{} broken links (fix the target or the link):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn the_docs_index_links_every_guide() {
    let root = repo_root();
    let index = root.join("docs/README.md");
    let markdown = std::fs::read_to_string(&index).expect("docs/README.md exists");
    let linked: BTreeSet<PathBuf> = prose_lines(&markdown)
        .into_iter()
        .flatten()
        .flat_map(link_targets)
        .filter(|t| !is_external(t))
        .filter_map(|t| {
            let path = t.split('#').next().unwrap_or_default().to_string();
            root.join("docs").join(path).canonicalize().ok()
        })
        .collect();
    let mut pages = Vec::new();
    markdown_under(&root.join("docs"), &mut pages);
    let missing: Vec<String> = pages
        .iter()
        .filter(|p| {
            let relative = p.strip_prefix(root.join("docs")).unwrap();
            // The generated reference and the decision records have their own indexes.
            !relative.starts_with("reference")
                && !relative.starts_with("decisions")
                && relative != Path::new("README.md")
        })
        .filter(|p| !linked.contains(&p.canonicalize().unwrap()))
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/README.md does not link these pages: {}",
        missing.join(", ")
    );
    for folder in ["reference/README.md", "decisions"] {
        assert!(
            linked.contains(&root.join("docs").join(folder).canonicalize().unwrap()),
            "docs/README.md does not link docs/{folder}"
        );
    }
}

#[test]
fn links_in_code_are_not_links_and_anchors_follow_github() {
    assert_eq!(
        link_targets("see [a](a.md) and `[b](b.md)` and ![c](img/c.png \"C\")"),
        ["a.md", "img/c.png"]
    );
    assert_eq!(
        prose_lines("x\n```sh\n[a](nope.md)\n```\ny"),
        [Some("x"), None, None, None, Some("y")]
    );
    assert_eq!(slug("6. Upgrading"), "6-upgrading");
    assert_eq!(
        slug("Differences from the Go operator's chart"),
        "differences-from-the-go-operators-chart"
    );
    assert_eq!(
        slug("`system`: how the process runs"),
        "system-how-the-process-runs"
    );
    let offered = anchors("# A\n## Metrics\n```\n# not a heading\n```\n### Metrics\n");
    assert_eq!(
        offered,
        BTreeSet::from(["a".to_string(), "metrics".to_string(), "metrics-1".to_string()])
    );
}

/// Where `line` names a path that leaves the repository or belongs to one machine, the offending text.
fn foreign_path(line: &str) -> Option<String> {
    // Spelled in pieces so that this file does not match itself.
    let sibling = ["..", "/shared"].concat();
    if line.contains(&sibling) {
        return Some(sibling);
    }
    // A machine's home or work folder at the start of a path (not `gs://bucket/root/...`).
    for folder in ["work", "home", "root", "Users"] {
        let root = format!("/{folder}/");
        for (at, _) in line.match_indices(&root) {
            let before = line.get(..at).and_then(|b| b.chars().last());
            if before.is_none_or(|c| c.is_whitespace() || "\"'`(=,[{<".contains(c)) {
                return Some(root);
            }
        }
    }
    None
}

/// Calls `check(file, line number, line)` for every line of every file git tracks, but those in `skip`.
fn for_each_tracked_line(skip: &[&str], mut check: impl FnMut(&str, usize, &str)) {
    let root = repo_root();
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .expect("git is needed to list the repository's files");
    assert!(listed.status.success(), "git ls-files failed: {listed:?}");
    for file in String::from_utf8(listed.stdout).unwrap().split('\0') {
        if file.is_empty() || skip.contains(&file) {
            continue;
        }
        // Binary files and files deleted in the work tree have no lines to check.
        let Ok(text) = std::fs::read_to_string(root.join(file)) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            check(file, number + 1, line);
        }
    }
}

#[test]
fn no_tracked_file_names_a_path_outside_the_repository() {
    let mut offending = Vec::new();
    for_each_tracked_line(&[".ci/run"], |file, number, line| {
        if let Some(found) = foreign_path(line) {
            offending.push(format!("{file}:{number}: {found}"));
        }
    });
    assert!(
        offending.is_empty(),
        "files name paths outside the repository or of one machine (tests read data from fixtures/ or \
         crates/*/tests/fixtures/; the Go operator's files through KFP_GO_COMPAT_DIR):\n{}",
        offending.join("\n")
    );
}

#[test]
fn foreign_paths_are_recognised() {
    let sibling = ["..", "/shared"].concat();
    assert_eq!(foreign_path(&format!("../{sibling}/fixtures")), Some(sibling));
    let work = ["/wo", "rk/"].concat();
    assert_eq!(
        foreign_path(&format!("const F: &str = \"{work}main/fixtures\";")),
        Some(work)
    );
    let root = ["/ro", "ot/"].concat();
    assert_eq!(foreign_path(&format!("venv {root}.cache/x")), Some(root));
    assert_eq!(foreign_path("\"pipeline_root\": \"gs://bucket/root/ns/p\""), None);
    assert_eq!(
        foreign_path("~/.cache/kfp-operator/venv and fixtures/run.yaml"),
        None
    );
}

/// Whether `line` cites a section of the design notes that are not in the repository (the section numbers of
/// `SPEC.md`): comments and docs cite the repository's own docs instead (docs/architecture.md).
fn cites_outside_design(line: &str) -> bool {
    // Spelled in pieces so that this file does not match itself.
    let citation = ["SP", "EC "].concat();
    line.match_indices(&citation)
        .any(|(at, _)| line[at + citation.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

#[test]
fn no_tracked_file_cites_the_design_notes_outside_the_repository() {
    let mut offending = Vec::new();
    // The changelog records history as it was written.
    for_each_tracked_line(&["CHANGELOG.md"], |file, number, line| {
        if cites_outside_design(line) {
            offending.push(format!("{file}:{number}"));
        }
    });
    assert!(
        offending.is_empty(),
        "cite docs/ (controllers.md, decisions/, ...) instead of the design notes outside the repository:\n{}",
        offending.join("\n")
    );
    let spec = ["SP", "EC"].concat();
    assert!(cites_outside_design(&format!("planner ({spec} 3.1)")));
    assert!(!cites_outside_design(&format!(
        "KFP_OPERATOR_{spec}_EXECUTOR, the {spec} key"
    )));
}

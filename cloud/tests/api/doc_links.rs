//! The repository's Markdown: every relative link names a file that exists,
//! and every `#anchor` a heading of that file, so moving or renaming a
//! document or a section cannot leave a dead link behind. No server needed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Folders that hold no documentation of ours (build output, installed tools,
/// dependencies, run data).
const SKIPPED: [&str; 7] = [
    "target",
    ".git",
    "node_modules",
    ".venv",
    ".tools",
    "data",
    ".sqlx",
];

#[test]
fn every_relative_link_in_the_markdown_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("README.md")),
        "no README.md under {}",
        root.display()
    );

    let mut dead = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable Markdown");
        for target in links(&text) {
            if let Err(why) = resolve(file, &text, &target) {
                let shown = file.strip_prefix(&root).unwrap_or(file).display();
                dead.push(format!("{shown}: ({target}) {why}"));
            }
        }
    }
    assert!(dead.is_empty(), "dead links:\n  {}", dead.join("\n  "));
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("readable directory");
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !SKIPPED.contains(&name) {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// `Ok` if `target`, a link found in `file` (whose text is `text`), points at
/// an existing file and, with `#anchor`, at one of its headings.
fn resolve(file: &Path, text: &str, target: &str) -> Result<(), String> {
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    let (linked, linked_text) = if path.is_empty() {
        (file.to_path_buf(), text.to_owned())
    } else {
        let linked = file.parent().expect("a file has a folder").join(path);
        if !linked.exists() {
            return Err("no such file".to_owned());
        }
        let linked_text = match linked.extension().and_then(|e| e.to_str()) {
            Some("md") if anchor.is_some() => {
                std::fs::read_to_string(&linked).expect("readable Markdown")
            }
            _ => String::new(),
        };
        (linked, linked_text)
    };
    match anchor {
        Some(anchor) if !anchors(&linked_text).contains(anchor) => Err(format!(
            "no heading #{anchor} in {}",
            linked.file_name().unwrap_or_default().to_string_lossy()
        )),
        _ => Ok(()),
    }
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The targets of the inline links `[text](target)` that stay inside the
/// repository: not URLs, and not inside code.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose(text) {
        // Inline code is every other piece between backticks.
        for piece in line.split('`').step_by(2) {
            let mut rest = piece;
            while let Some(start) = rest.find("](") {
                rest = &rest[start + 2..];
                let Some(end) = rest.find(')') else { break };
                let target = rest[..end].trim();
                if !target.contains("://") && !target.starts_with("mailto:") {
                    found.push(target.to_owned());
                }
                rest = &rest[end..];
            }
        }
    }
    found
}

/// The anchors GitHub gives the headings of `text`: lowercase, punctuation
/// dropped, spaces as hyphens, `-1`, `-2`… for repeats.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let title = heading.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while seen.contains(&unique) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
        seen.insert(unique);
    }
    seen
}

#[test]
fn anchors_follow_githubs_rules() {
    let text = "# Limits and abuse\n## HTTP connections (`cloud/src/serve/`)\n\
                ```sh\n# not a heading\n```\n## Production broker (Mosquitto + dynamic security)\n\
                ## Notes\n## Notes\n";
    let found = anchors(text);
    for anchor in [
        "limits-and-abuse",
        "http-connections-cloudsrcserve",
        "production-broker-mosquitto--dynamic-security",
        "notes",
        "notes-1",
    ] {
        assert!(found.contains(anchor), "{anchor} not in {found:?}");
    }
    assert!(!found.contains("not-a-heading"));
    assert_eq!(
        links("[a](x.md) `[b](y.md)` [c](https://e.org) [d](#e)"),
        ["x.md", "#e"]
    );
}

//! The house's rules, read from the source (docs/architecture.md draws them): the library's modules import
//! each other in one direction only, `record` and `config` sit at the bottom, `session` knows no part of an
//! audit, `report` knows records and not rules or services, and nothing in the library reaches the binary
//! or the simulator. Also inside each folder module. Test code (`#[cfg(test)] mod tests`) is left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its unit tests.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Names following `prefix` in `text` (`crate::record::…` gives `record`).
fn targets(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        match name.chars().next() {
            // `crate::Settings`: a re-export of the library's root, the top of the house.
            Some(c) if c.is_ascii_uppercase() => {
                out.insert("lib".to_string());
            }
            Some(_) => {
                out.insert(name);
            }
            None => {}
        }
    }
    // `use crate::{a, b}` lists several.
    let mut rest = text;
    let open = format!("{prefix}{{");
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let inside = &rest[..rest.find('}').unwrap_or(0)];
        for item in inside.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The module graph of the library: top-level module → the top-level modules it imports.
fn library_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "main" || module == "cli" || module == "lib" {
            continue;
        }
        let entry = graph.entry(module.clone()).or_default();
        for t in targets(&code(&f), "crate::") {
            if t != module {
                entry.insert(t);
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = path.iter().position(|p| p == n).unwrap();
                let mut c = path[at..].to_vec();
                c.push(n.to_string());
                return Some(c);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

// Story: the library's import graph has no circle, and no arrow from a lower room to a higher one.
#[test]
fn the_library_imports_one_way() {
    let g = library_graph();
    assert!(g.contains_key("record") && g.contains_key("report") && g.contains_key("iam"));
    assert_eq!(cycle(&g), None, "an import circle; the graph: {g:#?}");
    let imports = |m: &str| g.get(m).cloned().unwrap_or_default();
    assert!(
        imports("record").is_empty(),
        "record imports {:?}",
        imports("record")
    );
    assert!(
        imports("config").is_empty(),
        "config imports {:?}",
        imports("config")
    );
    for higher in ["iam", "cloudtrail", "account", "pool", "run"] {
        assert!(
            !imports("session").contains(higher),
            "session imports {higher}"
        );
    }
    for service in [
        "risk",
        "aws",
        "session",
        "iam",
        "cloudtrail",
        "org",
        "account",
        "pool",
        "limits",
        "run",
    ] {
        assert!(
            !imports("report").contains(service),
            "report imports {service}"
        );
    }
    for (m, deps) in &g {
        if m != "sim" {
            assert!(!deps.contains("sim"), "{m} imports the simulator");
        }
        assert!(!deps.contains("cli"), "{m} imports the binary's code");
        assert!(
            !deps.contains("lib"),
            "{m} imports from the library's root, above every room"
        );
    }
}

// Story: inside each folder module too, the files import each other one way.
#[test]
fn folder_modules_import_one_way_inside() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for folder in ["iam", "report", "session", "config", "cli"] {
        let mut files = Vec::new();
        rust_files(&src.join(folder), &mut files);
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in files {
            let name = f.file_stem().unwrap().to_string_lossy().to_string();
            let deps = targets(&code(&f), "super::");
            let deps = deps.into_iter().filter(|d| *d != name).collect();
            g.insert(name, deps);
        }
        // `mod.rs` declares its children; a child's `super::` points at mod.rs or a sibling.
        for (name, deps) in &mut g {
            if name != "mod" {
                deps.retain(|d| d != "mod");
            }
        }
        assert_eq!(cycle(&g), None, "{folder}/: {g:#?}");
    }
}

// Story: the README stays a front page (its two commands, the role, the flags, the files, the exit codes),
// at most 150 lines; the rest lives in docs/.
#[test]
fn the_readme_is_a_front_page() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let n = readme.lines().count();
    assert!(
        n <= 150,
        "README.md has {n} lines: move the detail to docs/"
    );
    for link in readme.split("](").skip(1) {
        let target = link.split(')').next().unwrap();
        if !target.starts_with("http") && !target.starts_with('#') {
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(target).exists(),
                "README.md links to {target}, which is not there"
            );
        }
    }
}

// Story: no source file outside the simulator runs past 600 lines, and each opens with a `//!` saying its
// one job.
#[test]
fn files_are_short_and_say_their_job() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f.strip_prefix(&src).unwrap();
        if !rel.starts_with("sim") {
            assert!(
                text.lines().count() <= 600,
                "{} has {} lines",
                rel.display(),
                text.lines().count()
            );
        }
        let tests_file = rel.file_name().is_some_and(|n| n == "tests.rs");
        assert!(
            text.starts_with("//!") || tests_file,
            "{} does not open with a //! doc",
            rel.display()
        );
    }
}

// Story: no function outside the simulator and the tests runs past 150 lines: a long one is split into
// steps a reader can name.
#[test]
fn functions_are_short() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut long = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_path_buf();
        if rel.starts_with("sim") || rel.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        // A file's tests module comes last.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let lines: Vec<&str> = code.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i].trim_start();
            let is_fn = !l.starts_with("//")
                && (l.starts_with("fn ")
                    || l.contains(" fn ") && (l.starts_with("pub") || l.starts_with("async")));
            if !is_fn {
                i += 1;
                continue;
            }
            let name = l.split("fn ").nth(1).unwrap_or("").split(['(', '<']).next();
            // Count braces outside strings and comments until the body closes.
            let (mut depth, mut opened, mut j) = (0i32, false, i);
            while j < lines.len() {
                let line = lines[j].split("//").next().unwrap_or("");
                let mut in_str = false;
                let mut prev = ' ';
                for c in line.chars() {
                    match c {
                        '"' if prev != '\\' => in_str = !in_str,
                        '{' if !in_str => {
                            depth += 1;
                            opened = true
                        }
                        '}' if !in_str => depth -= 1,
                        _ => {}
                    }
                    prev = c;
                }
                if (opened && depth == 0) || (!opened && line.trim_end().ends_with(';')) {
                    break;
                }
                j += 1;
            }
            if j - i + 1 > 150 {
                long.push(format!(
                    "{}: {} ({} lines)",
                    rel.display(),
                    name.unwrap_or("?"),
                    j - i + 1
                ));
            }
            i = j + 1;
        }
    }
    assert!(long.is_empty(), "functions past 150 lines: {long:?}");
}

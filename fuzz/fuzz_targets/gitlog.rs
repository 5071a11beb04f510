//! The git event log (`[log] backend = "git"`): `weft log`'s reader and the
//! writer that continues a repository's history across runs, over a
//! repository the input damages. A log weft wrote is a template with a few
//! topics; the input replaces one of its files, or overwrites part of it.
//! Any damage ends as an error naming the repository, or as history that
//! prints; never a panic or a hang.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use weft::gitlog::{GitLog, print_history};
use weft_runtime::devices::Log as _;

/// The template repository and its files (relative paths, sorted).
fn template() -> &'static (PathBuf, Vec<PathBuf>) {
    static T: OnceLock<(PathBuf, Vec<PathBuf>)> = OnceLock::new();
    T.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("weft-fuzz-gitlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let repo = base.join("template.git");
        let mut log = GitLog::open(&repo).unwrap();
        for i in 0..3 {
            log.append("arp", &format!("learned 10.0.0.{i}"), &[("table".into(), format!("10.0.0.{i} 52:54:00:00:00:0{i}"))]);
            log.append("faults", "dropped a write", &[("sector".into(), i.to_string()), ("state.count".into(), i.to_string())]);
        }
        drop(log);
        let mut files = Vec::new();
        walk(&repo, &repo, &mut files);
        files.sort();
        (repo, files)
    })
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

fn copy(from: &Path, to: &Path, files: &[PathBuf]) {
    for f in files {
        let dst = to.join(f);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        // libFuzzer's timer signal can interrupt the copy (EINTR): try again.
        while let Err(e) = std::fs::copy(from.join(f), &dst) {
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "copying {}: {e}", f.display());
        }
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (template, files) = template();
    let Some((&[pick, how], rest)) = data.split_first_chunk::<2>().map(|(a, r)| (a, r)) else { return };
    let repo = template.with_file_name("damaged.git");
    let _ = std::fs::remove_dir_all(&repo);
    copy(template, &repo, files);
    let file = repo.join(&files[usize::from(pick) % files.len()]);
    if how & 1 == 0 {
        std::fs::write(&file, rest).unwrap();
    } else if let Some((&[hi, lo], patch)) = rest.split_first_chunk::<2>() {
        let mut bytes = std::fs::read(&file).unwrap();
        let at = usize::from(u16::from_be_bytes([hi, lo])) % bytes.len().max(1);
        let end = at + patch.len();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[at..end].copy_from_slice(patch);
        std::fs::write(&file, bytes).unwrap();
    }
    let topic = match how >> 1 & 3 {
        0 => None,
        1 => Some("arp"),
        2 => Some("faults"),
        _ => Some("nothing-here"),
    };
    let _ = print_history(&repo, topic, &mut std::io::sink());
    // A run that logs to an existing repository continues its history.
    if how & 8 != 0 {
        if let Ok(mut log) = GitLog::open(&repo) {
            log.append("arp", "learned 10.0.0.9", &[("table".into(), "10.0.0.9 52:54:00:00:00:09".into())]);
        }
    }
});

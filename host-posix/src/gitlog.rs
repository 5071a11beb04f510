//! The git-backed event log (`[log] backend = "git"`): the deploy's events as
//! commits in a plain git repository, written with gitoxide (no git binary).
//!
//! One branch per topic (`refs/heads/arp`). Each commit's tree holds
//! `events` — every event of the topic so far, one line each — and one file per
//! piece of evolving state an event carries (a field named `table`, or
//! `state.<name>`), so `git log -p arp` shows each ARP table change as a diff.
//! Events are batched: a commit per 32 events, 200 ms after the first event of
//! a batch (a background thread commits what is pending), and at the end of
//! the run — so events that come together commit together on either host. A crash leaves a valid repository holding every event up to the
//! last commit (objects are written before the ref moves, and refs move by
//! lock-file rename).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gix::objs::tree::{Entry, EntryKind};
use weft_runtime::devices::Log;

const BATCH: usize = 32;
const BATCH_TIME: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Topic {
    /// The `events` file of the topic's tip.
    events: String,
    /// State files by name.
    state: BTreeMap<String, String>,
    /// Messages of events not yet committed.
    pending: Vec<String>,
}

struct Inner {
    /// Reopened for each commit: `gix::Repository` is not `Send`, and a
    /// commit per batch makes the open cost negligible.
    path: PathBuf,
    topics: BTreeMap<String, Topic>,
    pending: usize,
    /// When the oldest uncommitted event arrived: a batch closes 200 ms after
    /// its first event, so events that come together commit together.
    first_pending: Option<Instant>,
}

/// The `log` leaf: events go to `Inner`; a flusher thread commits batches
/// that would otherwise wait for the next event.
pub struct GitLog {
    inner: Arc<Mutex<Inner>>,
    stop: Arc<AtomicBool>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

fn branch(topic: &str) -> String {
    format!("refs/heads/{topic}")
}

/// A topic name that is a safe branch name: lowercase letters, digits, `-`.
fn clean_topic(topic: &str) -> String {
    let t: String = topic
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' { c } else { '-' })
        .collect();
    if t.is_empty() || t.starts_with('-') { format!("topic{t}") } else { t }
}

impl GitLog {
    /// Opens the repository at `path`, creating a bare one when missing.
    pub fn open(path: &Path) -> Result<GitLog> {
        let inner = Arc::new(Mutex::new(Inner::open(path)?));
        let stop = Arc::new(AtomicBool::new(false));
        let (i, st) = (inner.clone(), stop.clone());
        let flusher = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                // Parked, not asleep: dropping the log wakes it at once.
                std::thread::park_timeout(BATCH_TIME / 4);
                let mut g = i.lock().unwrap();
                if g.first_pending.is_some_and(|t| t.elapsed() >= BATCH_TIME) {
                    g.commit_or_warn();
                }
            }
        });
        Ok(GitLog { inner, stop, flusher: Some(flusher) })
    }
}

impl Inner {
    fn commit_or_warn(&mut self) {
        if let Err(e) = self.commit() {
            eprintln!("weft: warning: git log: {e:#}");
        }
    }

    fn open(path: &Path) -> Result<Inner> {
        if path.exists() {
            gix::open(path).with_context(|| format!("{} is not a git repository", path.display()))?;
        } else {
            gix::init_bare(path).with_context(|| format!("creating git repository {}", path.display()))?;
        }
        Ok(Inner { path: path.to_path_buf(), topics: BTreeMap::new(), pending: 0, first_pending: None })
    }

    /// Loads a topic's tip (to continue its history across runs).
    fn topic(&mut self, name: &str) -> &mut Topic {
        if !self.topics.contains_key(name) {
            let mut t = Topic::default();
            let repo = gix::open(&self.path).ok();
            if let Some(Ok(Some(mut r))) = repo.as_ref().map(|repo| repo.try_find_reference(branch(name).as_str())) {
                if let Ok(commit) = r.peel_to_commit() {
                    if let Ok(tree) = commit.tree() {
                        for e in tree.iter().flatten() {
                            let file = e.filename().to_string();
                            let Ok(obj) = e.object() else { continue };
                            let text = String::from_utf8_lossy(&obj.data).into_owned();
                            if file == "events" {
                                t.events = text;
                            } else {
                                t.state.insert(file, text);
                            }
                        }
                    }
                }
            }
            self.topics.insert(name.to_string(), t);
        }
        self.topics.get_mut(name).expect("inserted above")
    }

    /// Commits every topic with pending events.
    pub fn commit(&mut self) -> Result<()> {
        let repo = gix::open(&self.path)?;
        let names: Vec<String> = self.topics.iter().filter(|(_, t)| !t.pending.is_empty()).map(|(n, _)| n.clone()).collect();
        for name in names {
            let t = &self.topics[&name];
            let mut entries = Vec::new();
            for (file, text) in std::iter::once(("events", &t.events)).chain(t.state.iter().map(|(k, v)| (k.as_str(), v))) {
                let oid = repo.write_blob(text.as_bytes())?.detach();
                entries.push(Entry { mode: EntryKind::Blob.into(), filename: file.into(), oid });
            }
            entries.sort_by(|a, b| a.filename.cmp(&b.filename));
            let tree = repo.write_object(gix::objs::Tree { entries })?.detach();
            let message = match t.pending.as_slice() {
                [one] => format!("{one}\n"),
                many => format!("{} events: {}\n\n{}\n", many.len(), many[0], many.join("\n")),
            };
            let parent = repo
                .try_find_reference(branch(&name).as_str())?
                .and_then(|mut r| r.peel_to_id().ok().map(|id| id.detach()));
            let me = gix::actor::Signature {
                name: "weft".into(),
                email: "weft@localhost".into(),
                time: gix::date::Time::now_utc(),
            };
            let mut buf = gix::date::parse::TimeBuf::default();
            let sig = me.to_ref(&mut buf);
            repo.commit_as(sig, sig, branch(&name).as_str(), message, tree, parent)?;
            self.topics.get_mut(&name).expect("listed").pending.clear();
        }
        self.pending = 0;
        self.first_pending = None;
        Ok(())
    }
}

impl Log for GitLog {
    fn append(&mut self, topic: &str, message: &str, fields: &[(String, String)]) {
        self.inner.lock().unwrap().append(topic, message, fields);
    }
}

impl Inner {
    fn append(&mut self, topic: &str, message: &str, fields: &[(String, String)]) {
        let name = clean_topic(topic);
        let t = self.topic(&name);
        let line = message.replace('\n', " ");
        t.events.push_str(&line);
        for (k, v) in fields {
            t.events.push_str(&format!(" {k}={}", v.replace('\n', "\\n")));
        }
        t.events.push('\n');
        for (k, v) in fields {
            let file = if k == "table" { Some("table") } else { k.strip_prefix("state.") };
            if let Some(file) = file.filter(|f| !f.is_empty() && *f != "events" && !f.contains('/')) {
                let mut v = v.clone();
                if !v.ends_with('\n') {
                    v.push('\n');
                }
                t.state.insert(file.to_string(), v);
            }
        }
        t.pending.push(line);
        self.pending += 1;
        self.first_pending.get_or_insert_with(Instant::now);
        if self.pending >= BATCH {
            self.commit_or_warn();
        }
    }
}

impl Drop for GitLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(f) = self.flusher.take() {
            f.thread().unpark();
            let _ = f.join();
        }
        self.inner.lock().unwrap().commit_or_warn();
    }
}

/// `weft log`: the history of one topic (or of every topic), newest first,
/// read with gitoxide so git need not be installed.
pub fn print_history(path: &Path, topic: Option<&str>, out: &mut impl std::io::Write) -> Result<()> {
    let repo = gix::open(path).with_context(|| format!("{} is not a git repository (has the unikernel run yet?)", path.display()))?;
    let topics: Vec<String> = match topic {
        Some(t) => vec![clean_topic(t)],
        None => {
            let refs = repo.references()?;
            let mut names: Vec<String> = refs
                .local_branches()?
                .flatten()
                .map(|r| r.name().shorten().to_string())
                .collect();
            names.sort();
            names
        }
    };
    for name in topics {
        let Some(mut r) = repo.try_find_reference(branch(&name).as_str())? else {
            anyhow::bail!("no events on topic `{name}` in {}", path.display());
        };
        writeln!(out, "== topic {name}")?;
        let mut id = Some(r.peel_to_id()?.detach());
        while let Some(c) = id {
            let commit = repo.find_commit(c)?;
            let when = commit.time().map(|t| t.seconds).unwrap_or_default();
            writeln!(out, "commit {}  (unix {when})", c.to_hex_with_len(12))?;
            for line in commit.message_raw()?.to_string().lines() {
                writeln!(out, "    {line}")?;
            }
            id = commit.parent_ids().next().map(|p| p.detach());
        }
    }
    Ok(())
}

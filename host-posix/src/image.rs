//! `weft image`: disk images from host folders, and back.
//!
//! `create --from DIR -o IMAGE [--size S] [--format fat|tar]` puts a folder's files in an
//! image a `[wasi] preopens` entry reads: `fat` (default) for `fat:<role>`, writable, made
//! with the same fatfs code the `wasi` component runs; `tar` for `tar:<role>`, read-only.
//! `ls IMAGE [PATH]` and `cat IMAGE PATH` read either kind back. Bad input is exit code 2
//! and leaves nothing behind: the image is written beside its name and renamed at the end.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fatfs::{FileSystem, FormatVolumeOptions, FsOptions, StdIoWrapper};


/// `weft image`'s arguments.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// Build a disk image holding a host folder's files.
    Create {
        /// The folder whose files (and subfolders) the image holds.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The image file to write.
        #[arg(short = 'o', long = "output", value_name = "IMAGE")]
        output: PathBuf,
        /// The image's size (`64MiB`, `1GiB`); default: the files' size plus room to
        /// grow (a quarter more and 2 MiB). FAT only: a tar image is as big as its files.
        #[arg(long, value_name = "S")]
        size: Option<String>,
        /// `fat` (writable through `fat:<role>`) or `tar` (read-only through `tar:<role>`).
        #[arg(long, value_enum, default_value_t = Format::Fat)]
        format: Format,
        /// FAT only: bytes per cluster, a power of two from `512` to `32KiB`; default:
        /// fatfs's choice for the size (4 KiB for most). Bigger clusters make big files
        /// faster to write and read (fewer, longer runs) and cost each small file more.
        #[arg(long, value_name = "S")]
        cluster_size: Option<String>,
        /// Replace IMAGE when it exists.
        #[arg(long)]
        force: bool,
    },
    /// List an image's files (under PATH).
    Ls { image: PathBuf, path: Option<String> },
    /// Print one file of an image.
    Cat { image: PathBuf, path: String },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Fat,
    Tar,
}

use crate::exit::invalid;

pub fn run(args: &Args) -> Result<u8> {
    match &args.command {
        ImageCommand::Create { from, output, size, format, cluster_size, force } => {
            create(from, output, size.as_deref(), *format, cluster_size.as_deref(), *force)
        }
        ImageCommand::Ls { image, path } => {
            let mut out = std::io::stdout().lock();
            for line in ls(image, path.as_deref().unwrap_or(""))? {
                writeln!(out, "{line}")?;
            }
            Ok(0)
        }
        ImageCommand::Cat { image, path } => {
            std::io::stdout().lock().write_all(&cat(image, path)?)?;
            Ok(0)
        }
    }
}

/// What a folder holds: (path relative to it with `/`, is a directory, size), parents first.
fn walk(root: &Path) -> Result<Vec<(String, bool, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().into_string().map_err(|n| invalid(format!("error: `--from`: {n:?} in {} is not UTF-8", dir.display())))?;
            let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            let t = e.file_type()?;
            if t.is_dir() {
                out.push((path.clone(), true, 0));
                stack.push((e.path(), path));
            } else if t.is_file() {
                out.push((path, false, e.metadata()?.len()));
            } else {
                return Err(invalid(format!(
                    "error: `--from`: {} is neither a file nor a folder (a disk image holds only those)",
                    e.path().display()
                )));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn create(from: &Path, output: &Path, size: Option<&str>, format: Format, cluster_size: Option<&str>, force: bool) -> Result<u8> {
    let size_arg = size;
    if !from.is_dir() {
        return Err(invalid(format!("error: `--from {}`: no such folder", from.display())));
    }
    if output.exists() && !force {
        return Err(invalid(format!("error: `-o {}` exists; `--force` replaces it", output.display())));
    }
    let size = match size {
        None => None,
        Some(_) if format == Format::Tar => {
            return Err(invalid("error: `--size` is for `--format fat`; a tar image is as big as its files"));
        }
        Some(s) => match weft_runtime::units::parse_size(s) {
            Some(n) if n % 512 == 0 && n > 0 => Some(n),
            _ => return Err(invalid(format!("error: `--size {s}`: expected a whole number of 512-byte sectors such as `64MiB`"))),
        },
    };
    let cluster = match cluster_size {
        None => None,
        Some(_) if format == Format::Tar => return Err(invalid("error: `--cluster-size` is for `--format fat`; a tar image has no clusters")),
        Some(s) => match weft_runtime::units::parse_size(s).and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n.is_power_of_two() && (512..=32 * 1024).contains(&n) => Some(n),
            _ => return Err(invalid(format!("error: `--cluster-size {s}`: expected a power of two from `512` to `32KiB`, such as `4KiB`"))),
        },
    };
    let files = walk(from)?;
    let tmp = output.with_file_name(format!(
        ".{}.weft-tmp",
        output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let made = match format {
        Format::Fat => write_fat(from, &files, size.map(|n| (n, size_arg.unwrap_or_default())), cluster, &tmp),
        Format::Tar => write_tar(from, &files, &tmp),
    };
    let made = made.and_then(|()| std::fs::rename(&tmp, output).with_context(|| format!("writing {}", output.display())));
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let bytes: u64 = files.iter().map(|f| f.2).sum();
    let n = files.iter().filter(|f| !f.1).count();
    let dirs = files.len() - n;
    let total = std::fs::metadata(output)?.len();
    println!(
        "{}: {} image of {} bytes: {n} files ({bytes} bytes), {dirs} folders from {}",
        output.display(),
        if format == Format::Fat { "FAT" } else { "tar" },
        total,
        from.display()
    );
    Ok(0)
}

/// The default size of a FAT image for `files`: their clusters, a quarter more, 2 MiB.
fn default_size(files: &[(String, bool, u64)]) -> u64 {
    let data: u64 = files.iter().map(|f| f.2.div_ceil(4096) * 4096 + 4096).sum();
    (data + data / 4 + (2 << 20)).div_ceil(1 << 20) << 20
}

/// Now, for the entries' times (the `chrono` feature fatfs would use is not built).
#[derive(Debug)]
struct HostClock;

impl HostClock {
    fn now() -> fatfs::DateTime {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
        let (y, m, d) = weft_runtime::units::civil_from_days(secs.div_euclid(86_400));
        let y = y.clamp(1980, 2107);
        let s = secs.rem_euclid(86_400);
        fatfs::DateTime::new(
            fatfs::Date::new(y as u16, m as u16, d as u16),
            fatfs::Time::new((s / 3600) as u16, (s / 60 % 60) as u16, (s % 60) as u16, 0),
        )
    }
}

impl fatfs::TimeProvider for HostClock {
    fn get_current_date(&self) -> fatfs::Date {
        HostClock::now().date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        HostClock::now()
    }
}

fn write_fat(from: &Path, files: &[(String, bool, u64)], size: Option<(u64, &str)>, cluster: Option<u32>, tmp: &Path) -> Result<()> {
    let bytes = size.map_or_else(|| default_size(files), |s| s.0);
    let shown = size.map_or_else(|| bytes.to_string(), |s| s.1.to_string());
    let content: u64 = files.iter().map(|f| f.2).sum();
    let too_small = || {
        invalid(format!(
            "error: `--size {shown}`: too small for {} ({content} bytes of files); the default would be {}",
            from.display(),
            default_size(files)
        ))
    };
    if bytes / 512 > u64::from(u32::MAX) {
        return Err(invalid(format!("error: `--size {shown}`: FAT images end at 2 TiB")));
    }
    let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.set_len(bytes)?;
    let mut io = StdIoWrapper::from(file);
    let mut options = FormatVolumeOptions::new().volume_label(*b"WEFT       ");
    if let Some(c) = cluster {
        options = options.bytes_per_cluster(c);
    }
    fatfs::format_volume(&mut io, options).map_err(|e| match e {
        fatfs::Error::InvalidInput if cluster.is_some() && bytes >= default_size(files) => invalid(format!(
            "error: `--cluster-size`: FAT cannot lay out `--size {shown}` in clusters of {} bytes (too many of them); pick a bigger cluster or leave it out",
            cluster.unwrap_or_default()
        )),
        fatfs::Error::InvalidInput => too_small(),
        e => anyhow::anyhow!("formatting {}: {e}", tmp.display()),
    })?;
    let fs = FileSystem::new(io, FsOptions::new().time_provider(HostClock)).with_context(|| format!("mounting {}", tmp.display()))?;
    let root = fs.root_dir();
    for (path, dir, _) in files {
        let put = || -> Result<(), fatfs::Error<std::io::Error>> {
            if *dir {
                root.create_dir(path)?;
            } else {
                let data = std::fs::read(from.join(path)).map_err(fatfs::Error::Io)?;
                let mut f = root.create_file(path)?;
                f.truncate()?;
                fatfs::Write::write_all(&mut f, &data)?;
                fatfs::Write::flush(&mut f)?;
            }
            Ok(())
        };
        put().map_err(|e| match e {
            fatfs::Error::NotEnoughSpace => too_small(),
            e => anyhow::anyhow!("{}: {e}", from.join(path).display()),
        })?;
    }
    drop(root);
    fs.unmount().context("finishing the image")?;
    Ok(())
}

fn write_tar(from: &Path, files: &[(String, bool, u64)], tmp: &Path) -> Result<()> {
    let file = std::fs::File::create(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut b = tar::Builder::new(file);
    b.mode(tar::HeaderMode::Deterministic);
    for (path, dir, _) in files {
        let p = from.join(path);
        if *dir {
            b.append_dir(path, &p)
        } else {
            b.append_path_with_name(&p, path)
        }
        .with_context(|| format!("adding {}", p.display()))?;
    }
    b.into_inner()?.sync_all()?;
    Ok(())
}

enum Image {
    Fat(FileSystem<StdIoWrapper<std::fs::File>>),
    Tar(PathBuf),
}

fn open(image: &Path) -> Result<Image> {
    let file = std::fs::File::open(image).map_err(|e| invalid(format!("error: {}: {e}", image.display())))?;
    let mut head = [0u8; 512];
    let n = std::io::Read::read(&mut &file, &mut head)?;
    if n == 512 && &head[257..262] == b"ustar" {
        return Ok(Image::Tar(image.to_path_buf()));
    }
    // Opened read-only: fatfs writes nothing that only reads (a write would fail here).
    let file = std::fs::File::open(image).map_err(|e| invalid(format!("error: {}: {e}", image.display())))?;
    FileSystem::new(StdIoWrapper::from(file), FsOptions::new())
        .map(Image::Fat)
        .map_err(|e| invalid(format!("error: {}: neither a tar archive nor a FAT file system ({e})", image.display())))
}

/// `weft image ls`: `dir NAME/` and `file NAME SIZE` lines, the whole tree under `path`.
pub fn ls(image: &Path, path: &str) -> Result<Vec<String>> {
    let path = path.trim_matches('/');
    let mut out = Vec::new();
    match open(image)? {
        Image::Fat(fs) => {
            fn walk_fat<IO: fatfs::ReadWriteSeek>(dir: fatfs::Dir<'_, IO, fatfs::DefaultTimeProvider, fatfs::LossyOemCpConverter>, prefix: &str, out: &mut Vec<String>) -> Result<(), fatfs::Error<IO::Error>> {
                let mut entries: Vec<_> = dir.iter().collect::<Result<_, _>>()?;
                entries.sort_by_key(|e| e.file_name());
                for e in entries {
                    let name = e.file_name();
                    if name == "." || name == ".." {
                        continue;
                    }
                    let full = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
                    if e.is_dir() {
                        out.push(format!("dir  {full}/"));
                        walk_fat(e.to_dir(), &full, out)?;
                    } else {
                        out.push(format!("file {full} {}", e.len()));
                    }
                }
                Ok(())
            }
            let root = fs.root_dir();
            let dir = if path.is_empty() { root } else { root.open_dir(path).map_err(|e| invalid(format!("error: {path}: {e}")))? };
            walk_fat(dir, path, &mut out).map_err(|e| anyhow::anyhow!("reading {}: {e}", image.display()))?;
        }
        Image::Tar(p) => {
            let mut a = tar::Archive::new(std::fs::File::open(&p)?);
            for e in a.entries()? {
                let e = e?;
                let name = e.path()?.to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_string();
                if name.is_empty() || !(path.is_empty() || name == path || name.starts_with(&format!("{path}/"))) {
                    continue;
                }
                match e.header().entry_type() {
                    tar::EntryType::Directory => out.push(format!("dir  {name}/")),
                    _ => out.push(format!("file {name} {}", e.header().size()?)),
                }
            }
        }
    }
    Ok(out)
}

/// `weft image cat`: one file's bytes.
pub fn cat(image: &Path, path: &str) -> Result<Vec<u8>> {
    let path = path.trim_matches('/');
    match open(image)? {
        Image::Fat(fs) => {
            let mut f = fs.root_dir().open_file(path).map_err(|e| invalid(format!("error: {path}: {e}")))?;
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut data)?;
            Ok(data)
        }
        Image::Tar(p) => {
            let mut a = tar::Archive::new(std::fs::File::open(&p)?);
            for e in a.entries()? {
                let mut e = e?;
                if e.path()?.to_string_lossy().trim_start_matches("./") == path {
                    let mut data = Vec::new();
                    std::io::Read::read_to_end(&mut e, &mut data)?;
                    return Ok(data);
                }
            }
            Err(invalid(format!("error: {path}: not in {}", image.display())))
        }
    }
}

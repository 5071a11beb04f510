//! `weft image`: a host folder becomes a disk image a stock program reads and
//! changes (`fat`) or reads (`tar`); `ls` and `cat` read images back; bad input
//! is exit code 2, names the flag and leaves nothing behind.

mod common;
use common::*;

use std::path::Path;

/// `dir/src`: a.txt, docs/Read Me.md and a 200 KB data/blob.bin.
fn folder(dir: &Path) -> Vec<u8> {
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::create_dir_all(src.join("data")).unwrap();
    std::fs::write(src.join("a.txt"), "from the host\n").unwrap();
    std::fs::write(src.join("docs/Read Me.md"), "# a long name\n").unwrap();
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(src.join("data/blob.bin"), &blob).unwrap();
    blob
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_fat_image_from_a_folder_is_read_and_changed_by_a_run() {
    let dir = manifest(
        "image-fat-run",
        "[app]\ncomponent = \"stock.wasm\"\nargs = [\"fs\", \"ls:/data\", \"read:/data/a.txt\", \"put:/data/docs/Read Me.md=changed\", \"mkdir:/data/out\", \"put:/data/out/result.txt=done\"]\n\n[devices.disk]\nkind = \"block\"\nbackend = \"file\"\npath = \"disk.img\"\n\n[wasi]\npreopens = { \"/data\" = \"fat:disk\" }\n",
    );
    test_component(&dir, "wasi-stock", "stock.wasm");
    let blob = folder(&dir);
    let img = dir.join("disk.img");
    weft(&["image", "create", "--from", s(&dir.join("src")), "-o", s(&img)])
        .ok()
        .stdout_has("FAT image of")
        .stdout_has("3 files (200028 bytes), 2 folders");
    weft(&["image", "ls", s(&img)]).ok().stdout_has("file a.txt 14\ndir  data/\nfile data/blob.bin 200000\ndir  docs/\nfile docs/Read Me.md 14\n");
    let blob_back = weft_cmd(&["image", "cat", s(&img), "data/blob.bin"]).output().unwrap();
    assert!(blob_back.status.success() && blob_back.stdout == blob, "cat gives the file's bytes");

    let out = run(&dir);
    out.ok()
        .stdout_has("ls /data\n  file a.txt 14\n  dir data\n    file blob.bin 200000\n  dir docs\n    file Read Me.md 14\n")
        .stdout_has("read /data/a.txt: 14 bytes")
        .stdout_has("put /data/docs/Read Me.md: ok\nmkdir /data/out: ok\nput /data/out/result.txt: ok\n");
    weft(&["image", "cat", s(&img), "docs/Read Me.md"]).ok().stdout_has("changed");
    weft(&["image", "cat", s(&img), "/out/result.txt"]).ok().stdout_has("done");
    weft(&["image", "ls", s(&img), "out"]).ok().stdout_has("file out/result.txt 4\n");
}

#[test]
fn a_tar_image_from_a_folder_is_a_read_only_preopen() {
    let dir = manifest(
        "image-tar-run",
        "[app]\ncomponent = \"stock.wasm\"\nargs = [\"fs\", \"read:/data/docs/Read Me.md\", \"write:/data/new.txt\"]\n\n[devices.files]\nkind = \"block\"\nbackend = \"file\"\npath = \"data.tar\"\nread-only = true\n\n[wasi]\npreopens = { \"/data\" = \"tar:files\" }\n",
    );
    test_component(&dir, "wasi-stock", "stock.wasm");
    folder(&dir);
    let img = dir.join("data.tar");
    weft(&["image", "create", "--from", s(&dir.join("src")), "-o", s(&img), "--format", "tar"]).ok().stdout_has("tar image of");
    weft(&["image", "ls", s(&img), "docs"]).ok().stdout_has("dir  docs/\nfile docs/Read Me.md 14\n");
    weft(&["image", "cat", s(&img), "a.txt"]).ok().stdout_has("from the host\n");
    run(&dir).ok().stdout_has("read /data/docs/Read Me.md: 14 bytes").stdout_has("write /data/new.txt: err ReadOnlyFilesystem");
}

/// Only what the test put there: nothing left behind by a refused create.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn bad_input_is_exit_2_naming_the_flag_and_leaves_nothing() {
    let dir = scratch("image-bad");
    folder(&dir);
    let src = dir.join("src");
    let img = dir.join("out.img");
    weft(&["image", "create", "--from", s(&dir.join("nope")), "-o", s(&img)]).code(2).stderr_has("`--from").stderr_has("no such folder");
    weft(&["image", "create", "--from", s(&src), "-o", s(&img), "--size", "64KiB"])
        .code(2)
        .stderr_has("`--size 64KiB`: too small for")
        .stderr_has("200028 bytes of files");
    weft(&["image", "create", "--from", s(&src), "-o", s(&img), "--size", "lots"]).code(2).stderr_has("`--size lots`");
    weft(&["image", "create", "--from", s(&src), "-o", s(&img), "--format", "zip"]).code(2).stderr_has("'--format <FORMAT>'");
    weft(&["image", "create", "--from", s(&src), "-o", s(&img), "--format", "tar", "--size", "1MiB"]).code(2).stderr_has("`--size` is for `--format fat`");
    weft(&["image", "create", "--from", s(&src), "-o", s(&img), "--cluster-size", "3KiB"]).code(2).stderr_has("`--cluster-size 3KiB`: expected a power of two");
    weft(&["image", "create", "--from", s(&src), "-o", s(&img), "--cluster-size", "64KiB"]).code(2).stderr_has("from `512` to `32KiB`");
    weft(&["image", "create", "--from", s(&src), "-o", s(&img), "--format", "tar", "--cluster-size", "4KiB"]).code(2).stderr_has("`--cluster-size` is for `--format fat`");
    // More clusters than FAT32 can count: named, not a panic (the image is sparse).
    weft(&["image", "create", "--from", s(&src), "-o", s(&img), "--size", "1TiB", "--cluster-size", "512"]).code(2).stderr_has("`--cluster-size`: FAT cannot lay out `--size 1TiB` in clusters of 512 bytes");
    assert_eq!(listing(&dir), ["src"], "nothing left behind");
    // A cluster size that fits is what the image gets (mtools' minfo reads it).
    let big = dir.join("big.img");
    weft(&["image", "create", "--from", s(&src), "-o", s(&big), "--size", "64MiB", "--cluster-size", "32KiB"]).ok();
    let info = std::process::Command::new("minfo").args(["-i", s(&big), "::"]).env("MTOOLS_SKIP_CHECK", "1").output().unwrap();
    assert!(String::from_utf8_lossy(&info.stdout).contains("cluster size: 64 sectors"), "{}", String::from_utf8_lossy(&info.stdout));
    weft(&["image", "cat", s(&big), "data/blob.bin"]).ok();
    std::fs::remove_file(&big).unwrap();
    // An existing image is kept unless --force.
    std::fs::write(&img, "keep me").unwrap();
    weft(&["image", "create", "--from", s(&src), "-o", s(&img)]).code(2).stderr_has("`-o").stderr_has("exists; `--force` replaces it");
    assert_eq!(std::fs::read_to_string(&img).unwrap(), "keep me");
    weft(&["image", "create", "--from", s(&src), "-o", s(&img), "--force"]).ok();
    weft(&["image", "ls", s(&img)]).ok().stdout_has("file a.txt 14");
    assert_eq!(listing(&dir), ["out.img", "src"]);
    // Reading: neither format, a missing file.
    std::fs::write(dir.join("junk.img"), vec![7u8; 4096]).unwrap();
    weft(&["image", "ls", s(&dir.join("junk.img"))]).code(2).stderr_has("neither a tar archive nor a FAT file system");
    weft(&["image", "cat", s(&img), "missing.txt"]).code(2).stderr_has("missing.txt");
}

//! Helpers shared by the integration tests: run the built rbdimg, run the
//! real qemu-img as an oracle, and compare the two on identical inputs.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tempfile::TempDir;

pub const RBDIMG: &str = env!("CARGO_BIN_EXE_rbdimg");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(o: Output) -> Self {
        Outcome {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs rbdimg with `args` in `dir`.
pub fn rbdimg(dir: &Path, args: &[&str]) -> Outcome {
    Command::new(RBDIMG)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run rbdimg")
        .into()
}

/// Runs rbdimg and fails the test unless it exits 0.
pub fn rbdimg_ok(dir: &Path, args: &[&str]) -> Outcome {
    let out = rbdimg(dir, args);
    assert_eq!(out.code, 0, "rbdimg {args:?} failed: {out:#?}");
    out
}

/// A program the tests use as the reference for what is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oracle {
    QemuImg,
    QemuIo,
    /// QEMU's rbd block driver (Debian's qemu-block-extra).
    RbdDriver,
    /// A VM to boot: qemu-system-x86_64 of qemu-img's version, a kernel in
    /// /boot, debootstrap for the guest's root filesystem.
    Vm,
    /// cryptsetup, the reference reader of LUKS headers (cryptsetup-bin).
    Cryptsetup,
}

impl Oracle {
    /// Where the probe's answer is kept: one cell per oracle, so a new
    /// oracle cannot go without one.
    fn found(self) -> &'static OnceLock<Result<(), String>> {
        static CELLS: [OnceLock<Result<(), String>>; 5] = [const { OnceLock::new() }; 5];
        let index = match self {
            Oracle::QemuImg => 0,
            Oracle::QemuIo => 1,
            Oracle::RbdDriver => 2,
            Oracle::Vm => 3,
            Oracle::Cryptsetup => 4,
        };
        &CELLS[index]
    }

    /// Whether it is installed, or why not.
    fn probe(self) -> Result<(), String> {
        let run = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .output()
                .map_err(|_| format!("{program} is not on PATH"))
        };
        match self {
            Oracle::QemuImg => run("qemu-img", &["--version"]).map(drop),
            Oracle::QemuIo => run("qemu-io", &["--version"]).map(drop),
            Oracle::Cryptsetup => run("cryptsetup", &["--version"]).map(drop),
            // With the driver loaded, the option check fails first; without
            // it, the driver is unknown. Neither reaches a cluster.
            Oracle::RbdDriver => {
                let out = run("qemu-img", &["info", r#"json:{"driver":"rbd"}"#])?;
                if String::from_utf8_lossy(&out.stderr).contains("Parameter 'pool' is missing") {
                    Ok(())
                } else {
                    Err("qemu-img has no rbd driver (install qemu-block-extra)".to_string())
                }
            }
            Oracle::Vm => {
                let version = |program: &str| {
                    run(program, &["--version"]).map(|out| {
                        let text = String::from_utf8_lossy(&out.stdout).into_owned();
                        text.lines()
                            .next()
                            .unwrap_or("")
                            .rsplit(' ')
                            .next()
                            .unwrap_or("")
                            .to_string()
                    })
                };
                let (system, img) = (version("qemu-system-x86_64")?, version("qemu-img")?);
                if system != img {
                    return Err(format!("qemu-system-x86_64 is {system}, qemu-img {img}"));
                }
                let kernel = std::fs::read_dir("/boot").is_ok_and(|d| {
                    d.flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with("vmlinuz-"))
                });
                if !kernel {
                    return Err("no kernel in /boot (install linux-image-amd64)".to_string());
                }
                run("debootstrap", &["--version"]).map(drop)
            }
        }
    }
}

/// True when `oracle` is installed. When it is missing, a test that needs
/// it must not count as passed: under `CI=true` this fails the test with
/// the reason; elsewhere it says loudly that the test is skipped and
/// returns false (the caller returns).
pub fn require(oracle: Oracle) -> bool {
    match oracle.found().get_or_init(|| oracle.probe()) {
        Ok(()) => true,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("oracle missing under CI=true: {why} (tests/run.sh installs it)")
        }
        Err(why) => {
            let test = std::thread::current().name().unwrap_or("?").to_string();
            eprintln!("\n*** SKIPPED {test}: {why} ***\n");
            false
        }
    }
}

pub fn qemu_img(dir: &Path, args: &[&str]) -> Outcome {
    Command::new("qemu-img")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run qemu-img")
        .into()
}

/// Two directories prepared identically: qemu-img runs in one, rbdimg (as
/// a program named "qemu-img", so messages carry the same name) in the other.
pub struct Twin {
    root: TempDir,
}

impl Twin {
    pub fn new(setup: impl Fn(&Path)) -> Twin {
        let root = tempfile::tempdir().expect("tempdir");
        for side in ["ours", "theirs", "bin"] {
            fs::create_dir(root.path().join(side)).expect("mkdir");
        }
        symlink(RBDIMG, root.path().join("bin/qemu-img")).expect("symlink");
        setup(&root.path().join("ours"));
        setup(&root.path().join("theirs"));
        Twin { root }
    }

    /// Two directories holding copies (holes kept) of the files in
    /// `from`, typically made once by [`prepare`] for many cases, so that
    /// snapshot times and what a killed qemu-io left are the same on both
    /// sides.
    pub fn copy_of(from: &Path) -> Twin {
        Twin::new(|dir| copy_tree(from, dir))
    }

    /// The image `name` as both tools left it: byte for byte (`exact`), or,
    /// where qemu-img's layout is not deterministic, the same content, a
    /// clean `qemu-img check` and the same allocation map but for host
    /// offsets.
    pub fn assert_same_image(&self, name: &str, exact: bool) {
        if exact {
            return self.assert_same_file(name);
        }
        let (a, b) = (self.ours().join(name), self.theirs().join(name));
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        let here = self.theirs();
        let cmp = qemu_img(&here, &["compare", a, b]);
        assert_eq!(cmp.code, 0, "{name}: {cmp:#?}");
        // Raw images have no check (63).
        let check = qemu_img(&here, &["check", a]);
        assert!(matches!(check.code, 0 | 63), "{name}: {check:#?}");
        let map = |path: &str| {
            let out = qemu_img(&here, &["map", "--output=json", path]);
            let mut v: serde_json::Value = serde_json::from_str(&out.stdout).expect("map json");
            for e in v.as_array_mut().expect("map list") {
                e.as_object_mut().expect("map entry").remove("offset");
            }
            v
        };
        assert_eq!(map(a), map(b), "{name}: allocation maps differ");
    }

    pub fn ours(&self) -> PathBuf {
        self.root.path().join("ours")
    }

    pub fn theirs(&self) -> PathBuf {
        self.root.path().join("theirs")
    }

    /// Runs the same command on both sides.
    pub fn run(&self, args: &[&str]) -> (Outcome, Outcome) {
        let ours: Outcome = Command::new(self.root.path().join("bin/qemu-img"))
            .args(args)
            .current_dir(self.ours())
            .output()
            .expect("run rbdimg")
            .into();
        (ours, qemu_img(&self.theirs(), args))
    }

    /// Runs on both sides and requires identical exit code, stdout and stderr.
    pub fn assert_same(&self, args: &[&str]) -> Outcome {
        let (ours, theirs) = self.run(args);
        Self::require_same(args, ours, theirs)
    }

    /// Runs both programs on the same files in qemu-img's directory, for
    /// read-only commands whose output depends on how the filesystem laid
    /// out the files (disk sizes).
    pub fn assert_same_on_theirs(&self, args: &[&str]) -> Outcome {
        let ours: Outcome = Command::new(self.root.path().join("bin/qemu-img"))
            .args(args)
            .current_dir(self.theirs())
            .output()
            .expect("run rbdimg")
            .into();
        let theirs = qemu_img(&self.theirs(), args);
        Self::require_same(args, ours, theirs)
    }

    fn require_same(args: &[&str], ours: Outcome, theirs: Outcome) -> Outcome {
        assert_eq!(
            ours,
            theirs,
            "\n`{}` differs from qemu-img\n--- rbdimg:\n{}{}--- qemu-img:\n{}{}",
            args.join(" "),
            ours.stdout,
            ours.stderr,
            theirs.stdout,
            theirs.stderr
        );
        ours
    }

    /// Requires the same file contents on both sides.
    pub fn assert_same_file(&self, name: &str) {
        let a = fs::read(self.ours().join(name)).ok();
        let b = fs::read(self.theirs().join(name)).ok();
        assert!(
            a == b,
            "{name} differs between rbdimg and qemu-img (or exists on one side only)"
        );
    }
}

/// Copies the files under `from` into `to` with the same holes and the
/// same allocated zeros (`cp` turns zero blocks into holes, which changes
/// what a raw image's block status says).
pub fn copy_tree(from: &Path, to: &Path) {
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().expect("type").is_dir() {
            fs::create_dir(&dst).expect("mkdir");
            copy_tree(&src, &dst);
            continue;
        }
        let input = fs::File::open(&src).expect("open");
        let output = fs::File::create(&dst).expect("create");
        let len = input.metadata().expect("metadata").len();
        output.set_len(len).expect("set_len");
        let fd = input.as_raw_fd();
        let mut pos = 0i64;
        while (pos as u64) < len {
            // SAFETY: lseek on a descriptor we own; errors come back as -1.
            let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
            if data < 0 {
                break;
            }
            // SAFETY: as above.
            let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
            let mut buf = vec![0u8; (hole - data) as usize];
            input.read_exact_at(&mut buf, data as u64).expect("read");
            output.write_all_at(&buf, data as u64).expect("write");
            pos = hole;
        }
    }
}

/// A directory with the files `script` makes (qemu-img/qemu-io set-up).
pub fn prepare(script: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    sh(dir.path(), script);
    dir
}

/// Writes a sparse raw file of `size` bytes with `(offset, byte, len)` patterns.
pub fn make_raw(path: &Path, size: u64, patterns: &[(u64, u8, usize)]) {
    use std::os::unix::fs::FileExt;
    let f = fs::File::create(path).expect("create");
    f.set_len(size).expect("set_len");
    // In pieces: a test binary that once held a whole image passes that
    // peak on to every child it forks (ru_maxrss counts the pre-exec copy).
    const PIECE: usize = 4 << 20;
    for &(offset, byte, len) in patterns {
        let piece = vec![byte; len.min(PIECE)];
        for at in (0..len).step_by(PIECE) {
            let n = PIECE.min(len - at);
            f.write_all_at(&piece[..n], offset + at as u64)
                .expect("write");
        }
    }
}

/// Runs a shell command (qemu-img/qemu-io set-up) in `dir`.
pub fn sh(dir: &Path, cmd: &str) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs each test body against both backends of `$backend` (a type with
/// `ceph()` and `embedded()` constructors), as two tests.
macro_rules! both_backends_of {
    ($backend:ty: $($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[test]
                fn ceph() {
                    super::$test(&<$backend>::ceph());
                }
                #[test]
                fn embedded() {
                    super::$test(&<$backend>::embedded());
                }
            }
        )*
    };
}
pub(crate) use both_backends_of;

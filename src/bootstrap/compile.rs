//! Compiling `bootstrap` from the embedded source: check the toolchain first (and say exactly what to
//! install), extract the standalone workspace, let cargo drop the CLI's packages from the lock, build with
//! `--locked`, and move the binary into the cache. Shows progress; this is the one slow path of mlambda.
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::embedded;
use super::key::{CacheKey, CachePaths};
use super::Error;
use crate::ui::{progress, Printer};

/// How often a plain status line says the compile is still going when there is no spinner.
const PLAIN_EVERY: Duration = Duration::from_secs(60);
/// cargo's last lines kept for an error message.
const TAIL: usize = 40;

/// A finished compile.
#[derive(Debug)]
pub struct Compiled {
    pub path: PathBuf,
    pub elapsed: Duration,
    pub crates: usize,
}

/// The cargo to run and the extra environment the target needs (a cross linker).
#[derive(Debug)]
pub struct Toolchain {
    pub cargo: OsString,
    pub env: Vec<(String, String)>,
}

/// `name` in one of `PATH`'s directories.
pub fn find_on_path(name: &str, path: Option<&OsString>) -> Option<PathBuf> {
    std::env::split_paths(path?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Whether `rustup target list --installed` output lists `target`.
pub fn target_installed(listing: &str, target: &str) -> bool {
    listing.lines().any(|l| l.trim() == target)
}

/// The `host:` line of `rustc -vV`.
pub fn host_triple(rustc_vv: &str) -> Option<&str> {
    rustc_vv.lines().find_map(|l| l.strip_prefix("host: ")).map(str::trim)
}

/// The environment variable that names `target`'s linker for cargo.
pub fn linker_var(target: &str) -> String {
    format!("CARGO_TARGET_{}_LINKER", target.to_uppercase().replace('-', "_"))
}

/// A GNU cross linker for `target` when the host is another machine: `Ok(None)` when none is needed or
/// one is already configured, the variable and linker to set when one is on `PATH`, else what to install.
pub fn cross_linker(
    host: Option<&str>,
    target: &'static str,
    configured: bool,
    on_path: impl Fn(&str) -> bool,
) -> Result<Option<(String, String)>, Error> {
    if configured || host.is_none_or(|h| h == target) {
        return Ok(None);
    }
    let arch = target.split('-').next().unwrap_or(target);
    let linker = format!("{arch}-linux-gnu-gcc");
    if on_path(&linker) {
        Ok(Some((linker_var(target), linker)))
    } else {
        Err(Error::MissingLinker { target, linker, var: linker_var(target) })
    }
}

/// Checks cargo, the target's standard library and a linker before a compile that would fail minutes in.
pub fn check(target: &'static str, dir: &Path) -> Result<Toolchain, Error> {
    let path = std::env::var_os("PATH");
    let cargo = std::env::var_os("CARGO")
        .filter(|c| Path::new(c).is_file())
        .or_else(|| find_on_path("cargo", path.as_ref()).map(PathBuf::into_os_string))
        .ok_or(Error::NoCargo)?;
    // without rustup (a distribution's Rust) there is no list to check; cargo's own error then names the gap
    if find_on_path("rustup", path.as_ref()).is_some() {
        let out = Command::new("rustup").args(["target", "list", "--installed"]).current_dir(dir).output();
        if let Some(out) = out.ok().filter(|o| o.status.success()) {
            if !target_installed(&String::from_utf8_lossy(&out.stdout), target) {
                return Err(Error::MissingTarget { target });
            }
        }
    }
    let rustc = Command::new("rustc").arg("-vV").current_dir(dir).output().ok();
    let rustc_vv = rustc.filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).to_string());
    let host = rustc_vv.as_deref().and_then(host_triple);
    let configured = std::env::var_os(linker_var(target)).is_some_and(|v| !v.is_empty());
    let linker = cross_linker(host, target, configured, |l| find_on_path(l, path.as_ref()).is_some())?;
    Ok(Toolchain { cargo, env: linker.into_iter().collect() })
}

/// cargo's outcome: its status, the crates it compiled and its last lines.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub crates: usize,
    pub tail: Vec<String>,
}

/// Runs `cmd` with stderr read line by line: a spinner with the elapsed time and the crate being compiled
/// on a terminal, a plain line every `PLAIN_EVERY` otherwise, every line with `-v`.
pub fn run_cargo(mut cmd: Command, printer: &Printer, label: &str) -> std::io::Result<Run> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let stderr = child.stderr.take().ok_or_else(|| std::io::Error::other("cargo's stderr is not piped"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let spinner = progress::timed_spinner(printer, label);
    let plain = !printer.progress_enabled();
    let start = Instant::now();
    let mut next_plain = PLAIN_EVERY;
    let (mut crates, mut tail) = (0usize, VecDeque::with_capacity(TAIL));
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(line) => {
                printer.detail(&line);
                if let Some(what) = line.trim_start().strip_prefix("Compiling ") {
                    crates += 1;
                    let name = what.split_whitespace().next().unwrap_or(what);
                    spinner.set_message(format!("{label}: {crates} crates, now {name}"));
                }
                if tail.len() == TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if plain && start.elapsed() >= next_plain {
            printer.status(format!("  still {label}: {} so far, {crates} crates", elapsed(start.elapsed())));
            next_plain += PLAIN_EVERY;
        }
    }
    spinner.finish_and_clear();
    let status = child.wait()?;
    Ok(Run { status, crates, tail: tail.into() })
}

/// `6m58s`, `42s`.
pub fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

/// One compile per cache key at a time: a second mlambda waits on the lock file, then takes what the first
/// one made. The lock holds until the returned file is dropped.
fn lock_source(printer: &Printer, paths: &CachePaths) -> Result<std::fs::File, Error> {
    let lock_path = paths.source.with_extension("lock");
    let parent = lock_path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_error("create", parent))?;
    let lock = std::fs::File::create(&lock_path).map_err(io_error("create", &lock_path))?;
    if let Err(std::fs::TryLockError::WouldBlock) = lock.try_lock() {
        printer
            .status(format!("waiting for another mlambda that is compiling this runtime (`{}`)", lock_path.display()));
        lock.lock().map_err(io_error("lock", &lock_path))?;
    }
    Ok(lock)
}

/// The embedded lock is the whole workspace's, so `--locked` refuses it as it stands (cargo would drop the
/// CLI's packages). cargo first rewrites it for the runtime alone, keeping every pinned version; this proves
/// nothing was added or moved, so the build itself can run `--locked`.
fn prune_lock(cargo: Command, printer: &Printer, target: &'static str, source: &Path) -> Result<(), Error> {
    let program = cargo.get_program().to_os_string();
    let run = run_cargo(cargo, printer, "resolving the runtime's dependencies")
        .map_err(|source| Error::Spawn { cargo: program, source })?;
    if !run.status.success() {
        return Err(Error::CargoFailed { step: "cargo metadata", target, status: run.status, tail: run.tail });
    }
    let lock = source.join("Cargo.lock");
    let pruned = std::fs::read_to_string(&lock).map_err(io_error("read", &lock))?;
    let pinned = embedded::file("Cargo.lock").unwrap_or_default();
    let moved = embedded::unpinned(&String::from_utf8_lossy(&pinned), &pruned);
    if moved.is_empty() {
        Ok(())
    } else {
        Err(Error::LockChanged { packages: moved })
    }
}

/// Copies, then renames: a reader never sees half a binary, and the target dir keeps its own for next time.
fn install(built: &Path, dest: &Path) -> Result<(), Error> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    let partial = dir.join(format!("bootstrap.partial-{}", std::process::id()));
    std::fs::copy(built, &partial).map_err(io_error("copy the compiled runtime from", built))?;
    std::fs::rename(&partial, dest).map_err(io_error("move the compiled runtime to", dest))
}

/// Compiles `bootstrap` for `key` into `paths.bootstrap`; without `force`, a binary already there (perhaps
/// made by another mlambda while this one waited for the lock) is taken as it is.
pub fn compile(printer: &Printer, key: &CacheKey, paths: &CachePaths, force: bool) -> Result<Compiled, Error> {
    let target = key.target;
    let _lock = lock_source(printer, paths)?;
    if !force && paths.bootstrap.is_file() {
        return Ok(Compiled { path: paths.bootstrap.clone(), elapsed: Duration::ZERO, crates: 0 });
    }
    match std::fs::remove_dir_all(&paths.source) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_error("clear", &paths.source)(e)),
        _ => {}
    }
    embedded::extract(&paths.source).map_err(io_error("extract the runtime source into", &paths.source))?;
    let toolchain = check(target, &paths.source)?;
    printer.status(format!(
        "compiling the mlambda runtime (`bootstrap`) for {target} from the source inside mlambda {}: \
         only the first time, it takes a few minutes; later builds reuse `{}`",
        key.version,
        paths.bootstrap.display()
    ));
    let start = Instant::now();
    let cargo = |args: &[&str]| {
        let mut c = Command::new(&toolchain.cargo);
        c.args(args)
            .current_dir(&paths.source)
            .env("RUSTFLAGS", super::RUSTFLAGS)
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .envs(toolchain.env.iter().map(|(k, v)| (k, v)));
        c
    };
    prune_lock(cargo(&["metadata", "--format-version", "1"]), printer, target, &paths.source)?;

    let target_dir = paths.target_dir.to_string_lossy().to_string();
    let args = [
        "build",
        "--locked",
        "--profile",
        "lambda",
        "--target",
        target,
        "-p",
        "mlambda-runtime",
        "--bin",
        "bootstrap",
        "--target-dir",
        &target_dir,
    ];
    let run = run_cargo(cargo(&args), printer, "compiling bootstrap")
        .map_err(|source| Error::Spawn { cargo: toolchain.cargo.clone(), source })?;
    if !run.status.success() {
        return Err(Error::CargoFailed { step: "cargo build", target, status: run.status, tail: run.tail });
    }
    install(&paths.built(target), &paths.bootstrap)?;
    let elapsed_total = start.elapsed();
    printer.status(format!("compiled the runtime in {}: `{}`", elapsed(elapsed_total), paths.bootstrap.display()));
    Ok(Compiled { path: paths.bootstrap.clone(), elapsed: elapsed_total, crates: run.crates })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::OutputFormat;

    #[test]
    fn the_installed_target_list_is_read_line_by_line() {
        let listing = "x86_64-unknown-linux-gnu\nwasm32-unknown-unknown\n";
        assert!(target_installed(listing, "x86_64-unknown-linux-gnu"));
        assert!(!target_installed(listing, "aarch64-unknown-linux-gnu"));
        assert!(!target_installed("x86_64-unknown-linux-gnux32\n", "x86_64-unknown-linux-gnu"));
    }

    #[test]
    fn the_host_comes_from_rustc_vv() {
        let vv =
            "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n";
        assert_eq!(host_triple(vv), Some("x86_64-unknown-linux-gnu"));
        assert_eq!(host_triple("nothing"), None);
    }

    #[test]
    fn a_cross_build_needs_a_gnu_linker() {
        let x86 = Some("x86_64-unknown-linux-gnu");
        assert_eq!(cross_linker(x86, "x86_64-unknown-linux-gnu", false, |_| false).unwrap(), None);
        assert_eq!(cross_linker(x86, "aarch64-unknown-linux-gnu", true, |_| false).unwrap(), None);
        assert_eq!(
            cross_linker(x86, "aarch64-unknown-linux-gnu", false, |l| l == "aarch64-linux-gnu-gcc").unwrap(),
            Some(("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER".into(), "aarch64-linux-gnu-gcc".into()))
        );
        let err = cross_linker(x86, "aarch64-unknown-linux-gnu", false, |_| false).unwrap_err();
        assert!(err.help().contains("gcc-aarch64-linux-gnu"), "{}", err.help());
        assert!(err.to_string().contains("`aarch64-linux-gnu-gcc`"), "{err}");
    }

    #[test]
    fn path_lookup_finds_files_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tool"), "").unwrap();
        std::fs::create_dir(dir.path().join("adir")).unwrap();
        let path = std::env::join_paths(["/nonexistent".as_ref(), dir.path()]).unwrap();
        assert_eq!(find_on_path("tool", Some(&path)), Some(dir.path().join("tool")));
        assert_eq!(find_on_path("adir", Some(&path)), None);
        assert_eq!(find_on_path("tool", None), None);
    }

    #[test]
    fn a_failing_cargo_keeps_its_last_lines_and_counts_crates() {
        let printer = Printer::new(OutputFormat::Json, true, 0);
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "for i in $(seq 1 50); do echo \"   Compiling c$i v0.1.0\" >&2; done; echo 'error: boom' >&2; exit 3",
        ]);
        let run = run_cargo(cmd, &printer, "compiling").unwrap();
        assert_eq!(run.status.code(), Some(3));
        assert_eq!(run.crates, 50);
        assert_eq!(run.tail.len(), TAIL);
        assert_eq!(run.tail.last().map(String::as_str), Some("error: boom"));
    }

    #[test]
    fn a_second_compile_waits_for_the_first_and_takes_its_binary() {
        let root = tempfile::tempdir().unwrap();
        let key = CacheKey { version: "0.0.0".into(), target: "x86_64-unknown-linux-gnu", source_sha256: "ab".into() };
        let paths = CachePaths::new(root.path(), &key);
        std::fs::create_dir_all(paths.source.parent().unwrap()).unwrap();
        let first = std::fs::File::create(paths.source.with_extension("lock")).unwrap();
        first.lock().unwrap();
        let waiter = {
            let (key, paths) = (key.clone(), paths.clone());
            std::thread::spawn(move || compile(&Printer::new(OutputFormat::Json, true, 0), &key, &paths, false))
        };
        std::thread::sleep(Duration::from_millis(300));
        assert!(!waiter.is_finished(), "the second compile waits for the lock");
        std::fs::create_dir_all(paths.bootstrap.parent().unwrap()).unwrap();
        std::fs::write(&paths.bootstrap, b"built by the first").unwrap();
        first.unlock().unwrap();
        let done = waiter.join().unwrap().unwrap();
        assert_eq!((done.path, done.crates), (paths.bootstrap.clone(), 0));
        assert!(!paths.source.exists(), "the waiter extracted nothing");
    }

    #[test]
    fn durations_read_as_minutes_and_seconds() {
        assert_eq!(elapsed(Duration::from_secs(418)), "6m58s");
        assert_eq!(elapsed(Duration::from_secs(42)), "42s");
    }
}
